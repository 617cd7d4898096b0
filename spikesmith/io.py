"""All of spikesmith's file I/O: atomic writes, arrays, JSON, NIR files.

Every output is written to a temporary file in the target directory and moved into
place with :func:`os.replace`, so a crash never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from spikesmith.errors import GraphError, InputError

SCHEMA_VERSION = 1


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it onto ``path``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Atomically write ``data`` to ``path``; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write UTF-8 ``text`` to ``path``; returns the path."""
    return write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON (numpy values converted)."""
    return write_text(path, json.dumps(obj, indent=2, default=_json_default, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file, raising :class:`InputError` naming the file on failure."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: file not found")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{p}: not valid JSON ({exc})") from None


def save_array(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Atomically save ``array`` as ``.npy``."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, np.asarray(array))
    return Path(path)


def load_array(path: str | os.PathLike, *, what: str = "input") -> np.ndarray:
    """Load a ``.npy`` file, raising :class:`InputError` naming the file on failure."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: {what} file not found")
    try:
        arr = np.load(p, allow_pickle=False)
    except Exception as exc:  # numpy raises several types for corrupt files
        raise InputError(f"{p}: not a readable .npy array ({type(exc).__name__}: {exc})") from None
    if not isinstance(arr, np.ndarray):
        raise InputError(f"{p}: expected a single .npy array, got {type(arr).__name__}")
    if not np.issubdtype(arr.dtype, np.number) and arr.dtype != bool:
        raise InputError(f"{p}: expected a numeric array, got dtype {arr.dtype}")
    return arr


def write_nir(path: str | os.PathLike, graph) -> Path:
    """Atomically write a NIR graph with ``nir.write``."""
    import nir

    with atomic_path(path) as tmp:
        nir.write(str(tmp), graph)
    return Path(path)


def read_nir(path: str | os.PathLike, *, type_check: bool = True):
    """Read a NIR graph with ``nir.read``.

    Raises :class:`InputError` for a missing or unreadable file and :class:`GraphError`
    when ``nir`` rejects the graph's types (then ``type_check=False`` loads it anyway).
    """
    import nir

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: NIR file not found")
    try:
        import h5py

        with h5py.File(p, "r") as fh:
            if "node" not in fh:
                raise InputError(f"{p}: not a NIR file (no 'node' group in the HDF5 file)")
    except OSError:
        raise InputError(f"{p}: not a NIR file (not readable as HDF5)") from None
    try:
        return nir.read(str(p), type_check=type_check)
    except InputError:
        raise
    except ValueError as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "type" in msg.lower() or "shape" in msg.lower():
            raise GraphError(
                f"{p}: nir rejects the graph's types ({msg}); load it with type checking off "
                "(--no-type-check) to try anyway"
            ) from None
        raise InputError(f"{p}: unreadable NIR graph ({msg})") from None
    except Exception as exc:
        raise InputError(f"{p}: unreadable NIR graph ({type(exc).__name__}: {exc})") from None


def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """Atomically ``torch.save`` a checkpoint of tensors, numbers, strings, lists and dicts."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike, *, map_location="cpu") -> dict:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary code is unpickled)."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: checkpoint not found")
    try:
        return torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise InputError(f"{p}: unreadable checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None


def model_file(path: str | os.PathLike, fmt: str, what: str, state: dict | None = None) -> dict:
    """The checkpoint of a model file (``state``, if already loaded), checked to be of format ``fmt``."""
    state = load_checkpoint(path) if state is None else state
    if not isinstance(state, dict) or state.get("format") != fmt:
        raise InputError(f"{path}: not {what} (expected format '{fmt}')")
    return state


def load_weights(model, state_dict: dict, path: str | os.PathLike):
    """Load ``state_dict`` into ``model`` (a torch module) and return it in eval mode; a mismatch names ``path``."""
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as exc:
        raise InputError(f"{path}: weights do not fit the architecture ({str(exc).splitlines()[0]})") from None
    return model.eval()


def append_jsonl(path: str | os.PathLike, row: dict) -> None:
    """Append one JSON line to ``path`` (flushed and fsynced so a kill loses at most this line)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, default=_json_default) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """All complete JSON lines of ``path`` (a torn last line is ignored)."""
    p = Path(path)
    if not p.is_file():
        return []
    rows = []
    for line in p.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


def write_jsonl(path: str | os.PathLike, rows: list[dict]) -> Path:
    """Atomically (re)write ``rows`` as JSON lines."""
    return write_text(path, "".join(json.dumps(r, default=_json_default) + "\n" for r in rows))


def save_figure(path: str | os.PathLike, fig) -> Path:
    """Atomically save a matplotlib figure (format from the suffix)."""
    p = Path(path)
    with atomic_path(p) as tmp:
        fig.savefig(tmp, format=p.suffix.lstrip(".") or "png", dpi=110, bbox_inches="tight")
    return p
