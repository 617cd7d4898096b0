"""Passes on a network's layer graph before export: materialising generated weights and folding norms.

They work on the node list of a :class:`~spikesmith.nn.Network` (``(name, module, inputs)`` in
evaluation order) and return a new one; the network itself is not changed.

- :func:`materialise`: a layer that generates its weight (a GEE layer, a sign-constrained masked
  conv, a masked linear readout) becomes a plain ``nn.Conv2d``/``nn.Linear`` with the same
  effective weight; its compact form (``nir_metadata()``) rides along for the NIR node's metadata.
- :func:`fold_norms`: the one batch-norm folding pass. A norm (``nn.BatchNorm*`` or any layer with
  ``affine()``) whose inputs are all weight layers read by nothing else is folded into them:
  ``norm(sum_i W_i x_i + b_i) = sum_i (a W_i) x_i + a (sum_i b_i) + b``, the scale into every input
  and the shift into the first one's bias. This covers conv+BN, linear+BN, BN after several
  convolutions summed into one population, and BN on both branches of a residual block (each
  branch's BN has one input).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from spikesmith.errors import GraphError

Node = tuple[str, nn.Module, tuple[str, ...]]
WEIGHT_TYPES = (nn.Conv2d, nn.Conv1d, nn.Linear)


def materialise(layer: nn.Module) -> nn.Module:
    """A plain Conv2d/Linear equal to a layer that generates its weight, or the layer itself.

    A layer generates its weight when its ``weight`` is a property rather than a parameter (GEE
    layers, sign-constrained and masked layers); its ``nir_metadata()`` (if any) is kept on the copy
    as ``nir_meta``.
    """
    if not isinstance(getattr(type(layer), "weight", None), property):
        return layer
    with torch.no_grad():
        w = layer.weight.detach().clone()
        bias = getattr(layer, "bias", None)
        b = torch.zeros(w.shape[0], dtype=w.dtype) if bias is None else bias.detach().clone()
        if w.dim() == 4:
            plain = nn.Conv2d(w.shape[1] * layer.groups, w.shape[0], tuple(w.shape[2:]), stride=layer.stride,
                              padding=layer.padding, dilation=layer.dilation, groups=layer.groups)
        elif w.dim() == 2:
            plain = nn.Linear(w.shape[1], w.shape[0])
        else:
            raise GraphError(f"{type(layer).__name__}: a generated weight of {w.dim()} dimensions has no NIR form")
        plain.weight = nn.Parameter(w)
        plain.bias = nn.Parameter(b.to(w.dtype))
    meta = layer.nir_metadata() if callable(getattr(layer, "nir_metadata", None)) else {}
    mask = getattr(layer, "mask", None)
    if isinstance(mask, torch.Tensor):
        meta = {**meta, "spikesmith.mask_nonzero": int(mask.sum())}
    plain.nir_meta = dict(meta)
    return plain


def fold_norms(nodes: list[Node]) -> list[Node]:
    """The node list with every norm folded into the weight layers that feed it (see the module docstring).

    Raises :class:`GraphError` naming a norm that cannot be folded (an input that is not a weight
    layer, or one that other nodes read too).
    """
    from spikesmith.nn.layers import is_norm, norm_affine

    readers: dict[str, int] = {}
    for _, _, inputs in nodes:
        for i in inputs:
            readers[i] = readers.get(i, 0) + 1
    layers = {name: module for name, module, _ in nodes}
    replaced: dict[str, nn.Module] = {}
    forward: dict[str, tuple[str, ...]] = {}  # a folded norm's name -> the nodes that now stand for it
    out: list[Node] = []
    for name, module, inputs in nodes:
        inputs = tuple(i for src in inputs for i in forward.get(src, (src,)))
        if not is_norm(module):
            out.append((name, replaced.get(name, module), inputs))
            continue
        bad = [i for i in inputs if not isinstance(replaced.get(i, layers.get(i)), WEIGHT_TYPES)]
        shared = [i for i in inputs if readers.get(i, 0) > 1]
        if bad or shared:
            why = (f"input(s) {bad} are not convolution or linear layers" if bad
                   else f"input(s) {shared} are read by other nodes too")
            raise GraphError(f"node '{name}': {type(module).__name__} cannot be folded into its inputs: {why}")
        with torch.no_grad():
            a, b = (t.detach().to(torch.float64) for t in norm_affine(module))
            for k, i in enumerate(inputs):
                layer = replaced.get(i, layers[i])
                folded = copy.deepcopy(layer)  # keeps nir_meta
                w = layer.weight.detach().to(torch.float64)
                b0 = torch.zeros(w.shape[0], dtype=torch.float64) if layer.bias is None else \
                    layer.bias.detach().to(torch.float64)
                folded.weight = nn.Parameter(w * a.reshape(-1, *([1] * (w.dim() - 1))))
                folded.bias = nn.Parameter(a * b0 + (b if k == 0 else 0.0))
                replaced[i] = folded
        out = [(n, replaced.get(n, m), ins) for n, m, ins in out]
        forward[name] = inputs
    return out
