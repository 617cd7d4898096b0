"""Run a NIR file in another framework through that framework's own NIR importer.

Each runner takes a file path, an input ``(T, B, *shape)`` and, where the importer takes one, a
``dt`` to pass it, and returns every node's output
that the framework's imported module exposes under the node's name, as ``(T, B, *shape)`` arrays
(forward hooks on the imported submodules). Each uses the importer's defaults, as a new user
would: its own dt, its own reset. Norse's and snnTorch's importers hand NIR's ``Flatten(start_dim=0)``
to torch unchanged, so those two run one sample at a time (a batched input would be flattened
across the batch).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
from typing import Callable

import nir
import numpy as np
import torch

Recorded = dict[str, np.ndarray]


class Dropped(Exception):
    """The importer returned a module without some of the graph's nodes (it maps them to nothing).

    nirtorch's ``load`` (used by Norse's and Sinabs' importers) then wires the rest in an order that
    depends on Python's string hashing, so what running it does is not reproducible: the runners stop here.
    """


def _check_complete(net: torch.nn.Module, graph: nir.NIRGraph) -> None:
    have = {name for name, _ in net.named_modules()}
    lost = sorted(n for n, node in graph.nodes.items() if n not in have and not isinstance(node, (nir.Input, nir.Output)))
    if lost:
        raise Dropped("the import drops " + ", ".join(f"{n} ({type(graph.nodes[n]).__name__})" for n in lost))


def version(dist: str) -> str | None:
    """The installed version of distribution ``dist``, or None."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _record(module: torch.nn.Module, names) -> tuple[dict[str, list], list]:
    """Forward hooks storing each named submodule's output (the first element of a tuple)."""
    seen: dict[str, list] = {}
    handles = []
    for name, sub in module.named_modules():
        if name in names:
            seen[name] = []

            def hook(_m, _i, out, name=name):
                out = out[0] if isinstance(out, tuple) else out
                seen[name].append(out.detach().double().numpy().copy())

            handles.append(sub.register_forward_hook(hook))
    return seen, handles


def _stack(per_sample: list[dict[str, list]]) -> Recorded:
    """Per-sample lists of per-step outputs -> (T, B, ...) arrays."""
    names = set.intersection(*(set(d) for d in per_sample))
    return {n: np.stack([np.stack(d[n]) for d in per_sample], axis=1) for n in names if all(d[n] for d in per_sample)}


def run_norse(path, x: np.ndarray, dt: float | None = None) -> Recorded:
    import norse.torch

    graph = nir.read(str(path))
    kw = {} if dt is None else {"dt": dt}
    per_sample = []
    for b in range(x.shape[1]):
        net = norse.torch.from_nir(graph, **kw).double()
        _check_complete(net, graph)
        seen, _ = _record(net, graph.nodes)
        state = None
        with torch.no_grad():
            for t in range(x.shape[0]):
                _, state = net(torch.as_tensor(x[t, b]), state)
        per_sample.append(seen)
    return _stack(per_sample)


def run_snntorch(path, x: np.ndarray) -> Recorded:
    from snntorch import utils
    from snntorch.import_nir import import_from_nir

    graph = nir.read(str(path))
    with contextlib.redirect_stdout(io.StringIO()):  # its importer prints as it goes
        net = import_from_nir(graph)
    seen_all = []
    with torch.no_grad():
        for b in range(x.shape[1]):
            utils.reset(net)
            seen, handles = _record(net, graph.nodes)
            for t in range(x.shape[0]):
                net(torch.as_tensor(x[t, b], dtype=torch.float32))  # its spikes are float32 whatever the module
            for h in handles:
                h.remove()
            seen_all.append(seen)
    return _stack(seen_all)


def run_spikingjelly(path, x: np.ndarray, dt: float | None = None) -> Recorded:
    from spikingjelly.activation_based.nir_exchange import import_from_nir

    graph = nir.read(str(path))
    kw = {} if dt is None else {"dt": dt}
    net = import_from_nir(str(path), dtype=torch.float64, **kw)
    seen, _ = _record(net, graph.nodes)
    state = None
    with torch.no_grad():
        for t in range(x.shape[0]):
            _, state = net(torch.as_tensor(x[t]), state)
    return {n: np.stack(v) for n, v in seen.items() if v}


def run_sinabs(path, x: np.ndarray) -> Recorded:
    import sinabs.nir

    graph = nir.read(str(path))
    steps, batch = x.shape[:2]
    net = sinabs.nir.from_nir(graph, batch_size=batch)
    _check_complete(net, graph)
    seen, _ = _record(net, graph.nodes)
    # Sinabs' "Squeeze" layers take (B*T, ...) with the batch outermost
    xb = torch.as_tensor(np.swapaxes(x, 0, 1).reshape(batch * steps, *x.shape[2:]), dtype=torch.float32)
    with torch.no_grad():
        net(xb)
    return {n: np.swapaxes(v[0].reshape(batch, steps, *v[0].shape[1:]), 0, 1) for n, v in seen.items() if v}


#: framework -> (distribution name, runner)
FRAMEWORKS: dict[str, tuple[str, Callable[..., Recorded]]] = {
    "norse": ("norse", run_norse),
    "snntorch": ("snntorch", run_snntorch),
    "spikingjelly": ("spikingjelly", run_spikingjelly),
    "sinabs": ("sinabs", run_sinabs),
}
