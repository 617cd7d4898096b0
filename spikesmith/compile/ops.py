"""Stateless NIR nodes as torch functions on batched tensors ``(N, *shape)`` (owned by compile/).

One function per node type in a type -> function map (:data:`LINEAR_OPS`). These are
the synapse-side semantics shared by the Norse reference simulator, the Lava lowering
(which composes chains of them into one connection) and the ANN twin.
"""

from __future__ import annotations

from typing import Callable

import nir
import numpy as np
import torch
import torch.nn.functional as F

from spikesmith.errors import GraphError


def as_tensor(value, *, dtype: torch.dtype, device: torch.device | str = "cpu") -> torch.Tensor:
    """``value`` (array, tensor or number) as a tensor of ``dtype`` on ``device``."""
    if isinstance(value, torch.Tensor):
        return value.detach().to(device=device, dtype=dtype)
    return torch.as_tensor(np.array(value, dtype=np.float64), dtype=dtype, device=device)


def _pair(value, name: str, field: str) -> tuple[int, int]:
    arr = np.asarray(value).reshape(-1)
    if arr.size == 1:
        return int(arr[0]), int(arr[0])
    if arr.size == 2:
        return int(arr[0]), int(arr[1])
    raise GraphError(f"node '{name}': field '{field}' must be one or two integers, got {value!r}")


def conv_padding(node, name: str, ndim: int):
    """Explicit padding of a NIR convolution (ints), resolving 'same'/'valid'."""
    pad = node.padding
    if isinstance(pad, (str, np.str_)):
        if pad == "valid":
            return (0,) * ndim
        if pad == "same":
            k = np.asarray(node.weight.shape[2:])
            d = np.broadcast_to(np.asarray(node.dilation).reshape(-1), (ndim,))
            total = d * (k - 1)
            if np.any(total % 2):
                raise GraphError(f"node '{name}': 'same' padding with an even effective kernel is not supported")
            return tuple(int(t // 2) for t in total)
        raise GraphError(f"node '{name}': padding must be 'same', 'valid' or integers, got {pad!r}")
    if ndim == 1:
        return (int(np.asarray(pad).reshape(-1)[0]),)
    return _pair(pad, name, "padding")


def _affine(node: nir.Affine, x: torch.Tensor, name: str) -> torch.Tensor:
    w = as_tensor(node.weight, dtype=x.dtype, device=x.device)
    b = None if node.bias is None else as_tensor(node.bias, dtype=x.dtype, device=x.device)
    return F.linear(x, w, b)


def _linear(node: nir.Linear, x: torch.Tensor, name: str) -> torch.Tensor:
    return F.linear(x, as_tensor(node.weight, dtype=x.dtype, device=x.device))


def _scale(node: nir.Scale, x: torch.Tensor, name: str) -> torch.Tensor:
    return x * as_tensor(node.scale, dtype=x.dtype, device=x.device)


def _conv1d(node: nir.Conv1d, x: torch.Tensor, name: str) -> torch.Tensor:
    w = as_tensor(node.weight, dtype=x.dtype, device=x.device)
    b = None if node.bias is None else as_tensor(node.bias, dtype=x.dtype, device=x.device)
    return F.conv1d(
        x, w, b,
        stride=int(np.asarray(node.stride).reshape(-1)[0]),
        padding=conv_padding(node, name, 1),
        dilation=int(np.asarray(node.dilation).reshape(-1)[0]),
        groups=int(node.groups),
    )


def _conv2d(node: nir.Conv2d, x: torch.Tensor, name: str) -> torch.Tensor:
    w = as_tensor(node.weight, dtype=x.dtype, device=x.device)
    b = None if node.bias is None else as_tensor(node.bias, dtype=x.dtype, device=x.device)
    return F.conv2d(
        x, w, b,
        stride=_pair(node.stride, name, "stride"),
        padding=conv_padding(node, name, 2),
        dilation=_pair(node.dilation, name, "dilation"),
        groups=int(node.groups),
    )


def _sum_pool(node: nir.SumPool2d, x: torch.Tensor, name: str) -> torch.Tensor:
    k = _pair(node.kernel_size, name, "kernel_size")
    out = F.avg_pool2d(
        x, k, stride=_pair(node.stride, name, "stride"),
        padding=_pair(node.padding, name, "padding"), count_include_pad=True,
    )
    return out * (k[0] * k[1])


def _avg_pool(node: nir.AvgPool2d, x: torch.Tensor, name: str) -> torch.Tensor:
    return F.avg_pool2d(
        x, _pair(node.kernel_size, name, "kernel_size"),
        stride=_pair(node.stride, name, "stride"),
        padding=_pair(node.padding, name, "padding"), count_include_pad=True,
    )


def _flatten(node: nir.Flatten, x: torch.Tensor, name: str) -> torch.Tensor:
    # NIR's start/end dims index the unbatched shape; shift by one for the batch dim
    nd = x.dim() - 1
    start = node.start_dim if node.start_dim >= 0 else nd + node.start_dim
    end = node.end_dim if node.end_dim >= 0 else nd + node.end_dim
    return torch.flatten(x, start + 1, end + 1)


def _identity(node, x: torch.Tensor, name: str) -> torch.Tensor:
    return x


LinearOp = Callable[[nir.NIRNode, torch.Tensor, str], torch.Tensor]

#: NIR node type -> function(node, x (N, *in_shape), name) -> (N, *out_shape)
LINEAR_OPS: dict[type, LinearOp] = {
    nir.Affine: _affine,
    nir.Linear: _linear,
    nir.Scale: _scale,
    nir.Conv1d: _conv1d,
    nir.Conv2d: _conv2d,
    nir.SumPool2d: _sum_pool,
    nir.AvgPool2d: _avg_pool,
    nir.Flatten: _flatten,
    nir.Input: _identity,
    nir.Output: _identity,
    nir.ir.graph.Identity: _identity,
}


def apply_linear(node: nir.NIRNode, x: torch.Tensor, name: str) -> torch.Tensor:
    """Apply the stateless node ``node`` to ``x`` shaped ``(N, *input_shape)``."""
    op = LINEAR_OPS.get(type(node))
    if op is None:
        raise GraphError(f"node '{name}': {type(node).__name__} is not a stateless node")
    return op(node, x, name)


def delay_steps(node: nir.Delay, name: str, dt: float, shape: tuple[int, ...]) -> np.ndarray:
    """A Delay node's delays in whole time steps, one per element of ``shape`` (flat, int).

    NIR delays are in seconds; each must be a non-negative multiple of ``dt``.
    """
    d = np.broadcast_to(np.asarray(node.delay, dtype=np.float64), shape).reshape(-1) / dt
    steps = np.round(d)
    if np.any(steps < 0) or not np.allclose(d, steps, rtol=0, atol=1e-6):
        raise GraphError(f"node '{name}': Delay must be non-negative multiples of dt = {dt:g} s, "
                         f"got {np.unique(np.asarray(node.delay))[:5]} s")
    return steps.astype(np.int64)


def apply_delay(series: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Delay a series (T, B, *shape) element-wise by ``steps`` (flat, per element); zeros before."""
    t, b = series.shape[:2]
    flat = series.reshape(t, b, -1)
    out = np.zeros_like(flat)
    for d in np.unique(steps):
        cols = steps == d
        if d < t:
            out[d:, :, cols] = flat[:t - d, :, cols]
    return out.reshape(series.shape)


def fill_stateless(flat, activity: dict[str, np.ndarray], dt: float | None = None) -> dict[str, np.ndarray]:
    """Complete ``activity`` (T, B, *shape per node) with the outputs of stateless nodes.

    Targets that only record populations (e.g. Lava) use this so every target's Trace
    covers every node. A back edge delivers the previous step's value; a Delay node (which
    needs ``dt``) its input's value from its delay earlier.
    """
    out = dict(activity)
    for name, node in flat.nodes.items():
        if name in out:
            continue
        parts = []
        for p in flat.predecessors(name, back=False):
            parts.append(out[p])
        for p in flat.predecessors(name, back=True):
            shifted = np.zeros_like(out[p])
            shifted[1:] = out[p][:-1]
            parts.append(shifted)
        h = parts[0]
        for q in parts[1:]:
            h = h + q
        steps, batch = h.shape[:2]
        if isinstance(node, nir.Delay):
            if dt is None:
                raise GraphError(f"node '{name}': a Delay needs the time step to be replayed")
            out[name] = apply_delay(h, delay_steps(node, name, dt, h.shape[2:]))
            continue
        with torch.no_grad():
            y = apply_linear(node, torch.as_tensor(h.reshape(steps * batch, *h.shape[2:]), dtype=torch.float64), name)
        out[name] = y.numpy().reshape(steps, batch, *y.shape[1:])
    return out
