"""Graph passes on models and NIR graphs: batch-norm folding, validation."""

from __future__ import annotations

import copy

import torch
from torch import nn


def fold_bn_into(layer: nn.Module, bn: nn.modules.batchnorm._BatchNorm) -> nn.Module:
    """A copy of conv/linear ``layer`` with eval-mode batch norm ``bn`` folded in.

    y = gamma * (W x + b - mean) / sqrt(var + eps) + beta
      = (s * W) x + s * (b - mean) + beta,  s = gamma / sqrt(var + eps) per output channel.
    """
    if not isinstance(layer, (nn.Conv2d, nn.Conv1d, nn.Linear)):
        raise TypeError(f"cannot fold batch norm into {type(layer).__name__}")
    folded = copy.deepcopy(layer)  # keeps nir_meta of a materialised layer
    with torch.no_grad():
        s = (bn.weight if bn.affine else torch.ones_like(bn.running_var)) / torch.sqrt(bn.running_var + bn.eps)
        shift = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
        w = layer.weight * s.reshape(-1, *([1] * (layer.weight.dim() - 1)))
        b0 = layer.bias if layer.bias is not None else torch.zeros_like(bn.running_mean)
        b = s * (b0 - bn.running_mean) + shift
        folded.weight = nn.Parameter(w)
        folded.bias = nn.Parameter(b)
    return folded


def materialise(layer: nn.Module) -> nn.Module:
    """A plain Conv2d/Linear equal to a weight-generating layer (e.g. GEE), or the layer itself.

    The generating layer's ``nir_metadata()`` (its compact encodings) is kept on the copy as
    ``nir_meta`` so the exporter can store it in the NIR node.
    """
    if not hasattr(layer, "materialise"):
        return layer
    with torch.no_grad():
        w, b = layer.materialise()
        w = w.detach().clone()
        b = torch.zeros(w.shape[0]) if b is None else b.detach().clone()
        if w.dim() == 4:
            plain = nn.Conv2d(w.shape[1] * layer.groups, w.shape[0], tuple(w.shape[2:]), stride=layer.stride,
                              padding=layer.padding, dilation=layer.dilation, groups=layer.groups)
        elif w.dim() == 2:
            plain = nn.Linear(w.shape[1], w.shape[0])
        else:
            raise TypeError(f"{type(layer).__name__}.materialise() returned a weight of {w.dim()} dimensions")
        plain.weight = nn.Parameter(w)
        plain.bias = nn.Parameter(b)
    plain.nir_meta = dict(layer.nir_metadata()) if hasattr(layer, "nir_metadata") else {}
    return plain


def fold_batch_norm(layers: list[nn.Module]) -> list[nn.Module]:
    """The layer list with every BatchNorm that follows a conv/linear folded into it."""
    out: list[nn.Module] = []
    for layer in map(materialise, layers):
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            if not out or not isinstance(out[-1], (nn.Conv2d, nn.Conv1d, nn.Linear)):
                from spikesmith.errors import GraphError

                raise GraphError(f"{type(layer).__name__} must follow a convolution or linear layer to be folded")
            out[-1] = fold_bn_into(out[-1], layer)
        else:
            out.append(layer)
    return out
