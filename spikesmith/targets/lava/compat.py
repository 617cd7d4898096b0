"""Compatibility layer that lets lava-nc 0.10.0 import and run on Python 3.11.

lava-nc 0.10.0 declares ``python < 3.11``. Its only incompatibility on 3.11 is in
``lava/magma/compiler/var_model.py``: several dataclasses use an instance of the
(unhashable) dataclass ``ByteEncoder`` as a class-level default, which Python 3.11
rejects ("mutable default ... use default_factory"). :func:`ensure_lava` imports that
module once with dataclass processing patched so that such defaults become
``field(default_factory=...)`` producing an equal fresh copy. Every later Lava import
finds the module already loaded. Nothing else in Lava is touched.

Lava's multiprocessing module calls ``multiprocessing.set_start_method('fork')`` when it is
imported, which raises if anything in the interpreter chose a start method before (a process
pool, a distributed run). :func:`ensure_lava` imports that module with the call made tolerant:
the default method becomes 'fork' (what Lava's runtime needs) whatever was chosen before.

Call :func:`ensure_lava` before importing anything from ``lava``; the lowering code
in :mod:`spikesmith.targets.lava` does so itself.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import importlib
import sys
import threading

from spikesmith.errors import DependencyError

_LOCK = threading.Lock()
_VAR_MODEL = "lava.magma.compiler.var_model"
_MULTIPROCESSING = "lava.magma.runtime.message_infrastructure.multiprocessing"


def _is_mutable_dataclass_instance(value: object) -> bool:
    return (
        dataclasses.is_dataclass(value)
        and not isinstance(value, type)
        and type(value).__hash__ is None
    )


@contextlib.contextmanager
def _dataclass_defaults_as_factories():
    """Patch ``dataclasses._process_class`` to turn unhashable dataclass defaults
    into ``default_factory`` fields for the duration of the block."""
    original = dataclasses._process_class  # type: ignore[attr-defined]

    @functools.wraps(original)
    def patched(cls, *args, **kwargs):
        for name in list(cls.__dict__.get("__annotations__", {})):
            value = cls.__dict__.get(name, dataclasses.MISSING)
            if _is_mutable_dataclass_instance(value):
                setattr(
                    cls,
                    name,
                    dataclasses.field(default_factory=functools.partial(copy.deepcopy, value)),
                )
        return original(cls, *args, **kwargs)

    dataclasses._process_class = patched  # type: ignore[attr-defined]
    try:
        yield
    finally:
        dataclasses._process_class = original  # type: ignore[attr-defined]


@contextlib.contextmanager
def _tolerant_start_method():
    """Let ``multiprocessing.set_start_method`` replace a start method chosen earlier instead of raising."""
    import multiprocessing as mp

    original = mp.set_start_method

    def tolerant(method, force=False):
        if mp.get_start_method(allow_none=True) != method:
            original(method, force=True)

    mp.set_start_method = tolerant
    try:
        yield
    finally:
        mp.set_start_method = original


def ensure_lava() -> None:
    """Make ``import lava...`` work on this interpreter; idempotent and thread-safe.

    Raises :class:`~spikesmith.errors.DependencyError` if lava-nc is not installed.
    """
    if _VAR_MODEL in sys.modules:
        return
    with _LOCK:
        if _VAR_MODEL in sys.modules:
            return
        try:
            importlib.import_module("lava")
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise DependencyError(
                "lava-nc is not installed: install it with "
                "`pip install --ignore-requires-python lava-nc==0.10.0` (or `make demo`)"
            ) from exc
        if sys.version_info >= (3, 11):
            with _dataclass_defaults_as_factories():
                importlib.import_module(_VAR_MODEL)
        else:  # pragma: no cover - older interpreters import Lava unchanged
            importlib.import_module(_VAR_MODEL)
        with _tolerant_start_method():
            importlib.import_module(_MULTIPROCESSING)
