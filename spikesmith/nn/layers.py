"""Weight sources and norms beyond torch's own: sign-constrained masked convolutions, masked linear
readouts, batch norm with a positive gain, and spike relays.

Every weight source exposes ``weight`` (the effective tensor, torch orientation) and ``bias``
plus torch's geometry attributes, so the exporter treats it like ``nn.Conv2d``/``nn.Linear``;
every norm exposes ``affine() -> (a, b)`` with ``norm(h) = a * h + b`` per channel in eval mode.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class SignedConv(nn.Module):
    """A masked conv whose weights from excitatory channels are >= 0 and from inhibitory ones <= 0.

    weight = |raw| * sign (per input channel) * mask; unconstrained (sign 0) channels use raw.
    Same padding (kernel // 2), stride ``stride``.
    """

    def __init__(self, mask: np.ndarray, signs: np.ndarray, *, init_scale: float = 1.0, stride: int = 1,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.register_buffer("mask", torch.as_tensor(mask, dtype=torch.float32))
        self.register_buffer("sign", torch.as_tensor(signs, dtype=torch.float32).reshape(1, -1, 1, 1))
        fan_in = self.mask.sum(dim=(1, 2, 3)).clamp_min(1.0).reshape(-1, 1, 1, 1)
        bound = init_scale * torch.sqrt(3.0 / fan_in)  # uniform with variance 1/fan_in
        self.raw = nn.Parameter((torch.rand(self.mask.shape, generator=generator) * 2 - 1) * bound)
        k = int(mask.shape[-1])
        self.kernel_size = (k, k)
        self.stride = (int(stride), int(stride))
        self.padding = (k // 2, k // 2)
        self.dilation = (1, 1)
        self.groups = 1
        self.bias = None

    @property
    def weight(self) -> torch.Tensor:
        """The effective (C_out, C_in, K, K) weight."""
        w = torch.where(self.sign == 0, self.raw, self.raw.abs() * self.sign)
        return w * self.mask

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return F.conv2d(s, self.weight, stride=self.stride, padding=self.padding)

    def num_parameters(self) -> int:
        """Weights that exist (masked-out entries are not parameters)."""
        return int(self.mask.sum())


class MaskedLinear(nn.Module):
    """A linear layer whose weight is zero outside a fixed 0/1 ``mask`` (out_features, in_features)."""

    def __init__(self, mask: np.ndarray, *, generator: torch.Generator | None = None):
        super().__init__()
        self.register_buffer("mask", torch.as_tensor(mask, dtype=torch.float32))
        self.out_features, self.in_features = (int(s) for s in self.mask.shape)
        fan_in = max(1.0, float(self.mask.sum(1).max()))
        bound = 1.0 / np.sqrt(fan_in)  # nn.Linear's default range over the inputs that exist
        self.raw = nn.Parameter((torch.rand(self.mask.shape, generator=generator) * 2 - 1) * bound)
        self.bias = nn.Parameter((torch.rand(self.out_features, generator=generator) * 2 - 1) * bound)

    @property
    def weight(self) -> torch.Tensor:
        return self.raw * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)

    def num_parameters(self) -> int:
        return int(self.mask.sum()) + self.out_features


class PopulationNorm(nn.Module):
    """Batch norm of a population's drive with a positive per-channel gain (exp) and a bias."""

    def __init__(self, channels: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.log_gain = nn.Parameter(torch.zeros(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.bn(h) * self.log_gain.exp()[:, None, None] + self.bias[:, None, None]

    def affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(a, b) with norm(h) = a * h + b per channel, from the running statistics (eval mode)."""
        a = self.log_gain.exp() / torch.sqrt(self.bn.running_var + self.bn.eps)
        return a, self.bias - self.bn.running_mean * a


class Relay(nn.Module):
    """Passes spikes on unchanged (identity in torch). On export it becomes a spike-copying
    population (identity 1x1 conv into a LIF with tau = dt and threshold 0.5), which equalises
    path depths for targets whose every connection adds a step of latency."""

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return s


def norm_affine(norm: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """(a, b) per channel with ``norm(h) = a * h + b`` in eval mode, for torch's batch norms and
    any module with ``affine()``."""
    if isinstance(norm, nn.modules.batchnorm._BatchNorm):
        s = (norm.weight if norm.affine else torch.ones_like(norm.running_var)) / torch.sqrt(
            norm.running_var + norm.eps)
        shift = norm.bias if norm.affine else torch.zeros_like(norm.running_mean)
        return s, shift - s * norm.running_mean
    affine = getattr(norm, "affine", None)
    if callable(affine):
        return affine()
    raise TypeError(f"{type(norm).__name__} is not a normalisation layer")


def is_norm(module: nn.Module) -> bool:
    """True for a per-channel normalisation :func:`norm_affine` can fold."""
    return isinstance(module, nn.modules.batchnorm._BatchNorm) or callable(getattr(module, "affine", None))
