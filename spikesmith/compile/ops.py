"""Stateless NIR nodes as torch functions on batched tensors ``(N, *shape)`` (owned by compile/).

One function per node type in a type -> function map (:data:`LINEAR_OPS`). These are
the synapse-side semantics shared by the Norse reference simulator, the Lava lowering
(which composes chains of them into one connection) and the ANN twin.

The conv algebra (:class:`ConvSpec`, :func:`as_conv`, :func:`compose`) writes a chain of
convolutions, pooling, per-channel scales and identities as one convolution, so that the
deployment plan never needs a dense matrix of a conv layer: average pooling by ``s`` then a
stride-1 convolution with kernel ``K`` and padding ``p`` is one convolution of stride ``s``,
kernel ``K[dy // s, dx // s] / s**2`` and padding ``p * s``. A 1-D population of ``N`` neurons
is viewed as ``(N, 1, 1)``, so an identity edge or a per-neuron scale is a depthwise 1x1 conv.
"""

from __future__ import annotations

from dataclasses import dataclass
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


# ---------------------------------------------------------------- conv algebra

@dataclass(frozen=True, kw_only=True)
class ConvGeometry:
    """Where a 2-D convolution reads and writes: NIR (C, H, W) views of source and destination.

    A flat population of N neurons is viewed as (N, 1, 1).
    """

    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]

    @property
    def in_size(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def out_size(self) -> int:
        return int(np.prod(self.out_shape))

    def apply(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """The convolution of ``x`` (N, C, H, W) with ``weight`` (C_out, C_in / groups, kH, kW)."""
        return F.conv2d(x, weight, stride=self.stride, padding=self.padding, dilation=self.dilation,
                        groups=self.groups)

    def apply_flat(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """The convolution of flat sources ``x`` (N, in_size) as flat destinations (N, out_size)."""
        return self.apply(x.reshape(x.shape[0], *self.in_shape), weight).reshape(x.shape[0], -1)

    def fan_in(self, weight: np.ndarray) -> np.ndarray:
        """Number of nonzero synapses into each output neuron (flat NIR order); padding has none."""
        mask = torch.as_tensor((np.asarray(weight) != 0).astype(np.float64))
        ones = torch.ones(1, *self.in_shape, dtype=torch.float64)
        return self.apply(ones, mask).reshape(-1).numpy().round().astype(np.int64)

    def matrix(self, weight: np.ndarray, chunk: int = 1024) -> np.ndarray:
        """The (out_size, in_size) matrix of this convolution with ``weight`` (only for small layers)."""
        w = torch.as_tensor(np.asarray(weight, dtype=np.float64))
        cols = []
        for start in range(0, self.in_size, chunk):
            n = min(chunk, self.in_size - start)
            eye = torch.zeros(n, self.in_size, dtype=torch.float64)
            eye[torch.arange(n), start + torch.arange(n)] = 1.0
            cols.append(self.apply_flat(eye, w).numpy())
        return np.concatenate(cols, axis=0).T.copy()


@dataclass(frozen=True, kw_only=True, eq=False)
class ConvSpec:
    """A convolution without bias: ``weight`` (C_out, C_in / groups, kH, kW) and its geometry."""

    weight: np.ndarray
    geometry: ConvGeometry

    @property
    def depthwise(self) -> bool:
        """One input channel per output channel, the same one (a per-channel scale of a window)."""
        g = self.geometry
        return g.groups == g.in_shape[0] == g.out_shape[0] and self.weight.shape[1] == 1

    @property
    def matrix_like(self) -> bool:
        """A full 1x1 convolution of single pixels: a plain (C_out, C_in) matrix."""
        g = self.geometry
        return g.in_shape[1:] == (1, 1) and g.out_shape[1:] == (1, 1) and g.groups == 1

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return self.geometry.apply(x, as_tensor(self.weight, dtype=x.dtype, device=x.device))


def conv_view(shape: tuple[int, ...]) -> tuple[int, int, int] | None:
    """The (C, H, W) view of a node shape: itself if 3-D, (N, 1, 1) for a flat one, else None."""
    if len(shape) == 3:
        return (int(shape[0]), int(shape[1]), int(shape[2]))
    if len(shape) == 1:
        return (int(shape[0]), 1, 1)
    return None


def _out_size(n: int, k: int, s: int, p: int, d: int = 1) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _spec(weight, stride, padding, dilation, groups, in_shape) -> ConvSpec | None:
    weight = np.asarray(weight, dtype=np.float64)
    oh = _out_size(in_shape[1], weight.shape[2], stride[0], padding[0], dilation[0])
    ow = _out_size(in_shape[2], weight.shape[3], stride[1], padding[1], dilation[1])
    if oh < 1 or ow < 1:
        return None
    geometry = ConvGeometry(stride=(int(stride[0]), int(stride[1])), padding=(int(padding[0]), int(padding[1])),
                            dilation=(int(dilation[0]), int(dilation[1])), groups=int(groups),
                            in_shape=tuple(int(v) for v in in_shape), out_shape=(int(weight.shape[0]), oh, ow))
    return ConvSpec(weight=weight, geometry=geometry)


PASS_THROUGH = (nir.Input, nir.Output, nir.ir.graph.Identity)


def identity_conv(view: tuple[int, int, int]) -> ConvSpec:
    """The identity on a (C, H, W) view: a depthwise 1x1 convolution with weight 1."""
    return _spec(np.ones((view[0], 1, 1, 1)), (1, 1), (0, 0), (1, 1), view[0], view)


def as_conv(node, name: str, view: tuple[int, int, int]) -> ConvSpec | None:
    """The stateless node ``node`` acting on a (C, H, W) view as one convolution (its bias left out),
    or None if it is not one."""
    c, h, w = view
    if isinstance(node, PASS_THROUGH) or (isinstance(node, nir.Flatten) and (h, w) == (1, 1)):
        return identity_conv(view)
    if isinstance(node, nir.Conv2d):
        weight = np.asarray(node.weight, dtype=np.float64)
        groups = int(node.groups)
        if weight.ndim != 4 or weight.shape[1] * groups != c:
            return None
        return _spec(weight, _pair(node.stride, name, "stride"), conv_padding(node, name, 2),
                     _pair(node.dilation, name, "dilation"), groups, view)
    if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
        k = _pair(node.kernel_size, name, "kernel_size")
        kernel = np.ones((c, 1, *k)) / (k[0] * k[1] if isinstance(node, nir.AvgPool2d) else 1.0)
        return _spec(kernel, _pair(node.stride, name, "stride"), _pair(node.padding, name, "padding"), (1, 1), c, view)
    if isinstance(node, nir.Scale):
        scale = np.asarray(node.scale, dtype=np.float64)
        if scale.ndim == 1 and scale.size == c:
            scale = scale.reshape(c, 1, 1)
        try:
            per_channel = np.broadcast_to(scale, view).reshape(c, -1)
        except ValueError:
            return None
        if not np.all(per_channel == per_channel[:, :1]):
            return None
        return _spec(per_channel[:, 0].reshape(c, 1, 1, 1).copy(), (1, 1), (0, 0), (1, 1), c, view)
    if isinstance(node, (nir.Linear, nir.Affine)) and (h, w) == (1, 1):
        weight = np.asarray(node.weight, dtype=np.float64)
        if weight.ndim != 2 or weight.shape[1] != c:
            return None
        return _spec(weight.reshape(*weight.shape, 1, 1), (1, 1), (0, 0), (1, 1), 1, view)
    return None


def _full_weight(a: ConvSpec) -> np.ndarray:
    """The kernel of ``a`` with its groups expanded: (C_out, C_in, kH, kW), zero off the groups."""
    groups = a.geometry.groups
    if groups == 1:
        return a.weight
    co, cig, kh, kw = a.weight.shape
    full = np.zeros((co, cig * groups, kh, kw))
    per = co // groups
    for g in range(groups):
        full[g * per:(g + 1) * per, g * cig:(g + 1) * cig] = a.weight[g * per:(g + 1) * per]
    return full


def compose(a: ConvSpec, b: ConvSpec) -> ConvSpec | None:
    """The one convolution equal to ``a`` followed by ``b``, or None when no convolution equals it.

    With kernels K_a (size k_a, stride t_a, padding p_a) and K_b: stride t_a t_b, padding
    p_a + t_a p_b, kernel size k_a + t_a (k_b - 1), ``K[o, c, u] = sum_{m, j} K_b[o, m, j] K_a[m, c, u - t_a j]``.
    Exact when b's zero padding of a's output covers only positions whose window of ``a`` lies in
    the zero padding of a's input (k_a <= t_a + p_a on the left, t_a * size_a - p_a >= size_in on
    the right), and neither is dilated.
    """
    ga, gb = a.geometry, b.geometry
    if ga.out_shape != gb.in_shape or ga.dilation != (1, 1) or gb.dilation != (1, 1):
        return None
    for axis in (0, 1):
        if gb.padding[axis] > 0:
            k, t, p = a.weight.shape[2 + axis], ga.stride[axis], ga.padding[axis]
            if k > t + p or t * ga.out_shape[1 + axis] - p < ga.in_shape[1 + axis]:
                return None
    stride = (ga.stride[0] * gb.stride[0], ga.stride[1] * gb.stride[1])
    padding = (ga.padding[0] + ga.stride[0] * gb.padding[0], ga.padding[1] + ga.stride[1] * gb.padding[1])
    if a.depthwise and b.depthwise:
        # per channel: K[c] = K_b[c] (spread by t_a) convolved with K_a[c]
        ka, kb = torch.as_tensor(a.weight), torch.as_tensor(b.weight)
        w = F.conv_transpose2d(kb.permute(1, 0, 2, 3), ka, stride=ga.stride, groups=ga.in_shape[0])
        weight, groups = w.permute(1, 0, 2, 3).numpy(), ga.in_shape[0]
    else:
        fa, fb = torch.as_tensor(_full_weight(a)), torch.as_tensor(_full_weight(b))
        # K[o, c] = sum_m K_b[o, m] (spread by t_a) convolved with K_a[m, c]
        weight, groups = F.conv_transpose2d(fb, fa, stride=ga.stride).numpy(), 1
    spec = _spec(weight, stride, padding, (1, 1), groups, ga.in_shape)
    if spec is None or spec.geometry.out_shape != gb.out_shape:
        return None
    return spec
