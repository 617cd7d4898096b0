"""Genetically encoded (GEE) layers: weights generated from per-neuron encodings and one shared G.

A linear layer ``N_in -> N_out`` holds encodings ``X_pre (N_in, g)`` and ``X_post (N_out, g)``;
its weight is ``W = X_post @ G @ X_pre.T`` (N_out, N_in). A 2-D convolution treats every
(input channel, kernel offset) pair as a presynaptic unit: ``X_pre (C_in*k*k, g)``,
``X_post (C_out, g)``, ``W`` reshaped to ``(C_out, C_in, k, k)``. ``G (g, g)`` is one
:class:`GeneInteraction` owned by the network and referenced (not owned) by every layer.

The weight is generated once per ``forward`` call; the networks apply stateless layers to all
time steps at once, so that is once per forward pass, not once per time step.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spikesmith.errors import InputError

KAIMING_GAIN = math.sqrt(2.0)  # the ReLU gain torch's kaiming_normal_ uses


def generate_weight(x_post: torch.Tensor, g: torch.Tensor, x_pre: torch.Tensor) -> torch.Tensor:
    """Return ``X_post @ G @ X_pre.T`` (n_post, n_pre) from X_post (n_post, g), G (g, g), X_pre (n_pre, g).

    The product is ordered so that the (g, g) factor meets the smaller encoding first.
    """
    if x_post.shape[0] <= x_pre.shape[0]:
        return (x_post @ g) @ x_pre.T
    return x_post @ (g @ x_pre.T)


def dense_count(n_pre: int, n_post: int) -> int:
    """Return the number of weights of a dense ``n_pre -> n_post`` connection (bias excluded)."""
    return int(n_pre) * int(n_post)


def encoded_count(n_pre: int, n_post: int, genes: int) -> int:
    """Return the number of encoding entries ``genes * (n_pre + n_post)`` (G and bias excluded)."""
    return int(genes) * (int(n_pre) + int(n_post))


def encoding_pays_off(n_pre: int, n_post: int, genes: int) -> bool:
    """Return True when the encoded form of a connection is strictly smaller than the dense one."""
    return encoded_count(n_pre, n_post, genes) < dense_count(n_pre, n_post)


def _check_positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


class GeneInteraction(nn.Module):
    """The gene-interaction matrix G (g, g), one per network, shared by every encoded layer.

    Initialised N(0, 1/g) so that ``G @ x`` keeps the scale of ``x``; layers scale their encodings
    to the realised ``||G||_F`` (see :class:`GeneLinear`).
    """

    def __init__(self, genes: int, *, generator: torch.Generator | None = None):
        super().__init__()
        self.genes = _check_positive("genes", genes)
        g = torch.empty(self.genes, self.genes)
        g.normal_(0.0, 1.0 / math.sqrt(self.genes), generator=generator)
        self.g = nn.Parameter(g)

    def forward(self) -> torch.Tensor:
        """Return G (g, g)."""
        return self.g

    def extra_repr(self) -> str:
        return f"genes={self.genes}"


class _Encoded(nn.Module):
    """Shared machinery of the encoded layers: X_pre, X_post, a reference to G, optional bias."""

    kind = "linear"

    def __init__(self, n_pre: int, n_post: int, fan_in: int, *, gene: GeneInteraction, bias: bool,
                 gain: float, generator: torch.Generator | None):
        super().__init__()
        if not isinstance(gene, GeneInteraction):
            raise InputError(f"gene: expected the network's GeneInteraction, got {type(gene).__name__}")
        # Referenced, not registered: G is owned once by the network, so state_dict and
        # parameters() hold it once; deepcopy of the network keeps the sharing (memo).
        object.__setattr__(self, "_gene", gene)
        genes = gene.genes
        # Var(W_ij) = sum_ab G_ab^2 * s_post^2 * s_pre^2 for independent zero-mean X entries, so
        # s_post^2 * s_pre^2 = target / ||G||_F^2 gives the Kaiming variance gain^2 / fan_in.
        target = float(gain) ** 2 / fan_in
        g_sq = float(gene.g.detach().double().pow(2).sum())
        std = (target / max(g_sq, 1e-30)) ** 0.25
        x_pre = torch.empty(n_pre, genes)
        x_post = torch.empty(n_post, genes)
        x_pre.normal_(0.0, std, generator=generator)
        x_post.normal_(0.0, std, generator=generator)
        self.x_pre = nn.Parameter(x_pre)
        self.x_post = nn.Parameter(x_post)
        self.bias = nn.Parameter(torch.zeros(n_post)) if bias else None

    @property
    def gene(self) -> GeneInteraction:
        """Return the shared GeneInteraction module."""
        return self._gene

    @property
    def genes(self) -> int:
        """Return g, the length of every encoding."""
        return self._gene.genes

    def _flat_weight(self) -> torch.Tensor:
        if torch.is_grad_enabled():  # training: generate inside the autograd graph every time
            return generate_weight(self.x_post, self._gene.g, self.x_pre)
        # Inference: generate once and reuse until an encoding or G changes. In-place updates
        # (optimizer steps, load_state_dict) bump a tensor's version; moving the module gives new storage.
        key = tuple((t._version, t.data_ptr(), t.dtype, t.device) for t in (self.x_post, self._gene.g, self.x_pre))
        cached = self.__dict__.get("_weight_cache")
        if cached is None or cached[0] != key:
            cached = (key, generate_weight(self.x_post, self._gene.g, self.x_pre))
            object.__setattr__(self, "_weight_cache", cached)
        return cached[1]

    def materialise(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return (dense weight in torch orientation, bias or None), detached."""
        with torch.no_grad():
            w = self.weight.detach().clone()
        b = self.bias.detach().clone() if self.bias is not None else None
        return w, b

    def nir_metadata(self) -> dict:
        """Return the compact form for a NIR node's metadata: encodings, G, and the layer kind."""
        return {
            "gee.kind": self.kind,
            "gee.genes": int(self.genes),
            "gee.x_pre": self.x_pre.detach().cpu().numpy().copy(),
            "gee.x_post": self.x_post.detach().cpu().numpy().copy(),
            "gee.g": self._gene.g.detach().cpu().numpy().copy(),
        }

    def encoded_parameters(self) -> int:
        """Return the number of this layer's own trainable entries (X_pre, X_post, bias; G excluded)."""
        return sum(p.numel() for p in (self.x_pre, self.x_post, self.bias) if p is not None)

    def dense_parameters(self) -> int:
        """Return the parameter count of the same layer with a dense weight (bias included)."""
        return self.x_pre.shape[0] * self.x_post.shape[0] + (0 if self.bias is None else self.bias.numel())


class GeneLinear(_Encoded):
    """A linear layer ``in_features -> out_features`` whose weight is ``X_post @ G @ X_pre.T``.

    Args:
        gene: the network's shared :class:`GeneInteraction`.
        gain: Kaiming gain; X is initialised so that Var(W) = gain^2 / in_features.
        generator: torch.Generator for the initial encodings.
    """

    kind = "linear"

    def __init__(self, in_features: int, out_features: int, *, gene: GeneInteraction, bias: bool = True,
                 gain: float = KAIMING_GAIN, generator: torch.Generator | None = None):
        self.in_features = _check_positive("in_features", in_features)
        self.out_features = _check_positive("out_features", out_features)
        super().__init__(self.in_features, self.out_features, self.in_features, gene=gene, bias=bias,
                         gain=gain, generator=generator)

    @property
    def weight(self) -> torch.Tensor:
        """Return the generated weight (out_features, in_features)."""
        return self._flat_weight()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x @ W.T + b`` for x (..., in_features)."""
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"genes={self.genes}, bias={self.bias is not None}")


class GeneConv2d(_Encoded):
    """A 2-D convolution whose kernel is ``X_post @ G @ X_pre.T`` reshaped to (C_out, C_in, k, k).

    Geometry attributes mirror ``torch.nn.Conv2d`` (``stride``, ``padding``, ``dilation``,
    ``groups`` = 1, ``kernel_size``) so an exporter can treat it like one.
    """

    kind = "conv2d"

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], *,
                 gene: GeneInteraction, stride=1, padding=0, dilation=1, bias: bool = False,
                 gain: float = KAIMING_GAIN, generator: torch.Generator | None = None):
        self.in_channels = _check_positive("in_channels", in_channels)
        self.out_channels = _check_positive("out_channels", out_channels)
        k = tuple(kernel_size) if isinstance(kernel_size, (tuple, list)) else (kernel_size, kernel_size)
        if len(k) != 2:
            raise InputError(f"kernel_size: expected an int or a pair, got {kernel_size!r}")
        self.kernel_size = (_check_positive("kernel_size", k[0]), _check_positive("kernel_size", k[1]))
        pair = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (int(v), int(v))  # noqa: E731
        self.stride, self.padding, self.dilation = pair(stride), pair(padding), pair(dilation)
        self.groups = 1
        n_pre = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        super().__init__(n_pre, self.out_channels, n_pre, gene=gene, bias=bias, gain=gain, generator=generator)

    @property
    def weight(self) -> torch.Tensor:
        """Return the generated kernel (C_out, C_in, kh, kw)."""
        return self._flat_weight().reshape(self.out_channels, self.in_channels, *self.kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the convolution of x (N, C_in, H, W) with the generated kernel."""
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, 1)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, genes={self.genes}")


def _init_dense_(weight: torch.Tensor, *, gain: float, generator: torch.Generator | None) -> None:
    fan_in = weight[0].numel()
    with torch.no_grad():
        weight.normal_(0.0, float(gain) / math.sqrt(fan_in), generator=generator)


def make_linear(in_features: int, out_features: int, *, gene: GeneInteraction | None, bias: bool = True,
                gain: float = KAIMING_GAIN, generator: torch.Generator | None = None) -> nn.Module:
    """Return a GeneLinear, or a Kaiming-initialised ``nn.Linear`` when ``gene`` is None or
    the encoded form would not be smaller than the dense one (automatic dense fallback)."""
    if gene is not None and encoding_pays_off(in_features, out_features, gene.genes):
        return GeneLinear(in_features, out_features, gene=gene, bias=bias, gain=gain, generator=generator)
    layer = nn.Linear(in_features, out_features, bias=bias)
    _init_dense_(layer.weight, gain=gain, generator=generator)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def make_conv2d(in_channels: int, out_channels: int, kernel_size: int, *, gene: GeneInteraction | None,
                stride: int = 1, padding: int = 0, bias: bool = False, gain: float = KAIMING_GAIN,
                generator: torch.Generator | None = None) -> nn.Module:
    """Return a GeneConv2d, or a Kaiming-initialised ``nn.Conv2d`` when ``gene`` is None or the
    encoded form would not be smaller than the dense one (automatic dense fallback)."""
    n_pre = in_channels * kernel_size * kernel_size
    if gene is not None and encoding_pays_off(n_pre, out_channels, gene.genes):
        return GeneConv2d(in_channels, out_channels, kernel_size, gene=gene, stride=stride, padding=padding,
                          bias=bias, gain=gain, generator=generator)
    layer = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
    _init_dense_(layer.weight, gain=gain, generator=generator)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def is_encoded(layer: nn.Module) -> bool:
    """Return True for a genetically encoded layer (GeneLinear or GeneConv2d)."""
    return isinstance(layer, _Encoded)
