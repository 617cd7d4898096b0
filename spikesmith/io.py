"""All of spikesmith's file I/O: atomic writes, arrays, JSON, NIR files, checkpoints and model files.

Every output is written to a temporary file in the target directory and moved into
place with :func:`os.replace`, so a crash never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from spikesmith.errors import GraphError, InputError

SCHEMA_VERSION = 1


_UMASK_LOCK = threading.Lock()


def file_mode() -> int:
    """The mode a new file gets under the process's umask (0o644 under 022)."""
    with _UMASK_LOCK:
        mask = os.umask(0)
        os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success give it the umask's permissions and move it
    onto ``path`` (a crash never leaves a half-written file)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, file_mode())  # mkstemp's 0600 would otherwise survive the rename
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


# ---------------------------------------------------------------- outputs checked before any work

def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def _existing_ancestor(p: Path) -> Path:
    p = Path(os.path.abspath(p))
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_output(path: str | os.PathLike, *, kind: str = "file", inputs=(), writes: tuple[str, ...] = (),
                 what: str = "output") -> Path:
    """``path`` as a Path, after checking, before any work, that it can be written as a ``kind``
    ('file' or 'dir'); InputError naming it otherwise.

    Refused: an output that resolves to one of ``inputs``; an output directory that would receive a
    file named in ``writes`` that is one of ``inputs``; a file path that is a directory (or a
    directory path that is a file); a path under a file; a location that is not writable or lies on a
    read-only file system.
    """
    p = Path(path)
    ins = [Path(i) for i in inputs if i is not None]
    for src in ins:
        if _same_file(p, src):
            raise InputError(f"{p}: the {what} is the input {src}; choose another path (inputs are never overwritten)")
        if kind == "dir" and any(_same_file(p / name, src) for name in writes):
            raise InputError(f"{p}: writing the {what} directory would overwrite the input {src}")
    if kind == "file" and p.is_dir():
        raise InputError(f"{p}: the {what} is a directory; expected a file path")
    if kind == "dir" and p.exists() and not p.is_dir():
        raise InputError(f"{p}: the {what} directory exists as a file")
    anc = _existing_ancestor(p if kind == "dir" else p.parent)
    if not anc.is_dir():
        raise InputError(f"{p}: cannot create the {what} under {anc}, which is a file")
    try:
        read_only = bool(os.statvfs(anc).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    if read_only:
        raise InputError(f"{p}: the {what} lies on a read-only file system ({anc})")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise InputError(f"{p}: no permission to write the {what} in {anc}")
    return p


LOCK_NAME = ".spikesmith.lock"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _lock_holder(lock: Path) -> int:
    """The PID in a lock file (0: none or unreadable)."""
    try:
        return int(lock.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


@contextlib.contextmanager
def output_dir(path: str | os.PathLike, *, keep_on_error: bool = False) -> Iterator[Path]:
    """Hold ``path`` as this command's output directory: locked against a second command, and, when
    the command fails (``keep_on_error`` False), left as it was found.

    The lock is ``path/.spikesmith.lock`` holding this process's PID; a live holder is a one-line
    InputError naming the lock and the PID, a dead holder's lock is taken over. On failure the files
    created since entry are removed (and the directory, if it was created here); files that existed
    before are never touched. ``keep_on_error``: keep them (checkpoints of a resumable run).
    """
    p = Path(path)
    lock = p / LOCK_NAME
    if _lock_holder(lock) == os.getpid():  # held by this command already (a stage inside a pipeline)
        yield p
        return
    created = not p.exists()
    p.mkdir(parents=True, exist_ok=True)
    before = {q for q in p.rglob("*")}
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, file_mode())
        except FileExistsError:
            holder = _lock_holder(lock)
            if holder and holder != os.getpid() and _pid_alive(holder):
                raise InputError(f"{p}: in use by another spikesmith command (lock {lock}, PID {holder}); "
                                 "wait for it or choose another output directory") from None
            lock.unlink(missing_ok=True)  # a dead holder's lock: take it over
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{os.getpid()}\n")
        break
    ok = False
    try:
        yield p
        ok = True
    finally:
        lock.unlink(missing_ok=True)
        if not ok and not keep_on_error:
            for q in sorted(set(p.rglob("*")) - before, key=lambda x: len(x.parts), reverse=True):
                if q.is_dir() and not q.is_symlink():
                    shutil.rmtree(q, ignore_errors=True)
                else:
                    q.unlink(missing_ok=True)
            if created:
                shutil.rmtree(p, ignore_errors=True)


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


def json_bytes(obj: Any) -> bytes:
    """``obj`` as indented UTF-8 JSON (numpy values converted), the bytes :func:`write_json` writes."""
    return (json.dumps(obj, indent=2, default=_json_default, allow_nan=False) + "\n").encode("utf-8")


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON (numpy values converted)."""
    return write_bytes(path, json_bytes(obj))


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
    if arr.size == 0:
        raise InputError(f"{p}: the {what} is empty (shape {arr.shape}); expected at least one step and one sample")
    check_finite(arr, p)
    return arr


def check_finite(arr: np.ndarray, where) -> None:
    """InputError naming ``where``, the count and the first index of NaN or infinite values in ``arr``."""
    if np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.complexfloating):
        bad = ~np.isfinite(arr)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise InputError(f"{where}: {int(bad.sum())} NaN or infinite value(s) (first at index {first})")


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
        raise InputError(f"{p}: file not found")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: empty file (expected a spikesmith checkpoint or model file)")
    try:
        return torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise InputError(f"{p}: unreadable checkpoint ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


# ---------------------------------------------------------------- model files

MODEL_FORMAT = "spikesmith.model"
MODEL_VERSION = 1
_LEGACY_SNN = "spikesmith.snn/1"  # conv SNNs of an earlier release
_LEGACY_NAS = "spikesmith.nas-model/1"  # MSE-NAS best networks of an earlier release


@dataclass(frozen=True, kw_only=True)
class ModelFile:
    """A model file's contents: which network (family name and spec in JSON form), its weights, and how it runs.

    ``dt`` is the time step (s) the network was trained with; ``reset``/``reset_timing`` its neurons'
    reset rule; ``encoding`` the input encoding of its data (e.g. ``rate``), ``steps`` its time steps
    per sample and ``data`` the dataset name, where known; ``meta`` free JSON (genome, accuracy, ...).
    ``indexed_keys``: the weights of an earlier release's sequential network, keyed ``layers.<index>``
    instead of by node name (:func:`spikesmith.nn.load_model` renames them).
    """

    path: str
    family: str
    spec: dict
    state_dict: dict
    dt: float = 1e-3
    reset: str = "value"
    reset_timing: str = "immediate"
    encoding: str | None = None
    steps: int | None = None
    data: str | None = None
    meta: dict = field(default_factory=dict)
    indexed_keys: bool = False


def save_model(path: str | os.PathLike, *, family: str, spec: dict, state_dict: dict, dt: float,
               encoding: str | None = None, steps: int | None = None, data: str | None = None,
               reset: str = "value", reset_timing: str = "immediate", meta: dict | None = None) -> Path:
    """Atomically write a model file (tensors, numbers and strings only: it loads with ``weights_only``)."""
    settings = {"dt": float(dt), "reset": reset, "reset_timing": reset_timing, "encoding": encoding,
                "steps": None if steps is None else int(steps), "data": data}
    return save_checkpoint(path, {
        "format": MODEL_FORMAT, "version": MODEL_VERSION, "family": str(family),
        "spec": json.dumps(spec, sort_keys=True, default=_json_default), "settings": json.dumps(settings),
        "meta": json.dumps(meta or {}, default=_json_default),
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
    })


def read_model_file(path: str | os.PathLike) -> ModelFile:
    """Read a model file (this format, or a conv-SNN/GEE model file of an earlier release).

    One-line InputError naming the file for: a missing, empty, truncated or non-checkpoint file, a
    pickle payload (never executed: ``weights_only`` loading refuses it), a newer format version, a
    malformed spec or settings. The family is checked where it is built (:func:`spikesmith.nn.load_model`).
    """
    p = Path(path)
    state = load_checkpoint(p)
    if not isinstance(state, dict):
        raise InputError(f"{p}: not a spikesmith model file (a {type(state).__name__}, not a checkpoint dict)")
    fmt = state.get("format")
    if fmt in (_LEGACY_SNN, _LEGACY_NAS) or (fmt is None and {"model", "arch", "genes"} <= set(state)):
        return _legacy_model(p, state)
    if fmt != MODEL_FORMAT:
        raise InputError(f"{p}: not a spikesmith model file (format {fmt!r}; expected '{MODEL_FORMAT}')")
    version = state.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MODEL_VERSION:
        raise InputError(f"{p}: model file version {version!r} is not one this spikesmith reads "
                         f"(1..{MODEL_VERSION}); a newer spikesmith wrote it")
    try:
        spec, settings, meta = (json.loads(state[k]) for k in ("spec", "settings", "meta"))
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise InputError(f"{p}: malformed model file ({_first_line(exc)})") from None
    sd = state.get("state_dict")
    if not isinstance(sd, dict) or not isinstance(spec, dict) or not isinstance(meta, dict):
        raise InputError(f"{p}: malformed model file (state_dict, spec and meta must be mappings)")
    return ModelFile(path=str(p), family=str(state.get("family")), spec=spec, state_dict=sd, meta=meta,
                     **_settings(p, settings))


def _settings(p: Path, s: dict) -> dict:
    if not isinstance(s, dict):
        raise InputError(f"{p}: malformed model file (settings is not an object)")
    dt = s.get("dt", 1e-3)
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not np.isfinite(dt) or dt <= 0:
        raise InputError(f"{p}: settings.dt = {dt!r} is not a positive number of seconds")
    steps = s.get("steps")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise InputError(f"{p}: settings.steps = {steps!r} is not a positive integer")
    return {"dt": float(dt), "reset": str(s.get("reset", "value")),
            "reset_timing": str(s.get("reset_timing", "immediate")), "encoding": s.get("encoding"),
            "steps": steps, "data": s.get("data")}


def _legacy_model(p: Path, state: dict) -> ModelFile:
    """A model file of an earlier release, read as this format (conv SNNs and sequential GEE nets)."""
    fmt = state.get("format")
    if fmt == _LEGACY_NAS:
        raise InputError(f"{p}: an MSE-NAS model in the format of an earlier spikesmith ('{_LEGACY_NAS}'), which "
                         "this version does not read; re-create it with `spikesmith evolve nas ... --train N`")
    try:
        if fmt == _LEGACY_SNN:
            arch = state["arch"]
            spec = {**dict(arch["values"]), "input_shape": list(arch["input_shape"]),
                    "num_classes": int(arch["num_classes"])}
            settings = {"dt": arch.get("dt", 1e-3), "encoding": arch.get("encoding"), "steps": arch.get("steps"),
                        "data": arch.get("data")}
            return ModelFile(path=str(p), family="conv", spec=spec, state_dict=state["state_dict"],
                             **_settings(p, settings))
        if state["arch"] not in ("digits", "vgg11"):
            raise InputError(f"{p}: a GEE '{state['arch']}' model in the format of an earlier spikesmith, which "
                             "this version does not read; re-create it with `spikesmith evolve gee ...`")
        spec = {"arch": str(state["arch"]), "genes": int(state["genes"]), "encoded": "gene.g" in state["model"]}
        return ModelFile(path=str(p), family="gee", spec=spec, state_dict=state["model"], indexed_keys=True,
                         **_settings(p, {}))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"{p}: malformed model file of an earlier spikesmith ({_first_line(exc)})") from None


def check_finite_weights(state_dict: dict, where) -> None:
    """InputError naming ``where``, the tensor, the count and the first index of any NaN/inf value."""
    import torch

    for key, t in state_dict.items():
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            bad = ~torch.isfinite(t)
            if bad.any():
                first = tuple(int(i) for i in torch.nonzero(bad)[0])
                raise InputError(f"{where}: weight '{key}' has {int(bad.sum())} NaN or infinite value(s) "
                                 f"(first at index {first})")


def load_weights(model, state_dict: dict, path: str | os.PathLike, *, what: str = "the architecture"):
    """Load ``state_dict`` into ``model`` (a torch module) and return it in eval mode; a mismatch names ``path``."""
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = lines[1] if len(lines) > 1 else (lines[0] if lines else type(exc).__name__)
        raise InputError(f"{path}: weights do not fit {what} ({detail[:240]})") from None
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
