"""GEE layers: weight formula, shared G, Kaiming-variance init, dense fallback, export interface."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from spikesmith.errors import InputError
from spikesmith.nn.families.gee import build_network
from spikesmith.nn.gee import (
    GeneConv2d, GeneInteraction, GeneLinear, encoding_pays_off, generate_weight, is_encoded, make_conv2d,
    make_linear,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_generate_weight_matches_explicit_sum():
    g = gen(1)
    xp, G, xq = torch.randn(5, 3, generator=g), torch.randn(3, 3, generator=g), torch.randn(7, 3, generator=g)
    explicit = torch.einsum("ia,ab,jb->ij", xp, G, xq)
    torch.testing.assert_close(generate_weight(xp, G, xq), explicit)
    torch.testing.assert_close(generate_weight(xq, G.T, xp), explicit.T)  # other association order


def test_linear_forward_equals_dense_layer_with_materialised_weight():
    gene = GeneInteraction(4, generator=gen())
    layer = GeneLinear(12, 6, gene=gene, generator=gen(2))
    with torch.no_grad():
        layer.bias.copy_(torch.arange(6.0))
    x = torch.randn(3, 12, generator=gen(3))
    w, b = layer.materialise()
    assert w.shape == (6, 12) and not w.requires_grad
    torch.testing.assert_close(w, layer.x_post @ gene.g @ layer.x_pre.T)
    torch.testing.assert_close(layer(x), F.linear(x, w, b))


def test_conv_forward_equals_conv2d_with_materialised_kernel():
    gene = GeneInteraction(4, generator=gen())
    conv = GeneConv2d(3, 8, 3, gene=gene, stride=2, padding=1, generator=gen(4))
    assert conv.x_pre.shape == (3 * 3 * 3, 4) and conv.x_post.shape == (8, 4)
    w, b = conv.materialise()
    assert w.shape == (8, 3, 3, 3) and b is None
    x = torch.randn(2, 3, 9, 9, generator=gen(5))
    ref = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
    with torch.no_grad():
        ref.weight.copy_(w)
    torch.testing.assert_close(conv(x), ref(x))
    assert (conv.stride, conv.padding, conv.dilation, conv.groups) == ((2, 2), (1, 1), (1, 1), 1)


def test_nir_metadata_reproduces_the_weight():
    gene = GeneInteraction(5, generator=gen())
    conv = GeneConv2d(4, 6, 3, gene=gene, generator=gen(1))
    meta = conv.nir_metadata()
    w = torch.from_numpy(meta["gee.x_post"] @ meta["gee.g"] @ meta["gee.x_pre"].T).reshape(6, 4, 3, 3)
    torch.testing.assert_close(w, conv.materialise()[0], rtol=1e-5, atol=1e-6)
    assert meta["gee.genes"] == 5 and meta["gee.kind"] == "conv2d"


def test_g_is_shared_owned_once_and_gets_gradient_from_every_layer():
    model = build_network("digits", genes=4, seed=0)
    encoded = [m for m in model.modules() if is_encoded(m)]
    assert len(encoded) >= 2 and all(m.gene is model.gene for m in encoded)
    g_keys = [k for k in model.state_dict() if k.endswith(".g")]
    assert g_keys == ["gene.g"]
    assert sum(p is model.gene.g for p in model.parameters()) == 1
    # every layer's contribution reaches the one G
    grads = []
    for m in encoded:
        model.zero_grad()
        m.weight.sum().backward()
        grads.append(model.gene.g.grad.clone())
    assert all(gr.abs().sum() > 0 for gr in grads)
    assert not torch.allclose(grads[0], grads[1])
    # deepcopy keeps the sharing inside the copy
    clone = copy.deepcopy(model)
    assert all(m.gene is clone.gene for m in clone.modules() if is_encoded(m))
    assert clone.gene is not model.gene


@pytest.mark.parametrize("kind,shape,genes", [("linear", (512, 384), 64), ("conv", (128, 64, 3), 32),
                                              ("conv", (256, 256, 3), 160)])
def test_init_gives_kaiming_variance(kind, shape, genes):
    ratios = []
    for seed in range(3):
        gene = GeneInteraction(genes, generator=gen(seed))
        if kind == "linear":
            layer = GeneLinear(shape[1], shape[0], gene=gene, bias=False, generator=gen(100 + seed))
            fan_in = shape[1]
        else:
            layer = GeneConv2d(shape[1], shape[0], shape[2], gene=gene, generator=gen(100 + seed))
            fan_in = shape[1] * shape[2] ** 2
        w = layer.materialise()[0]
        ratios.append(float(w.var()) / (2.0 / fan_in))
        assert abs(float(w.mean())) < 0.1 * math.sqrt(2.0 / fan_in)
    mean_ratio = sum(ratios) / len(ratios)
    assert 0.85 < mean_ratio < 1.15, ratios


def test_dense_fallback_where_encoding_does_not_pay():
    gene = GeneInteraction(16, generator=gen())
    assert not encoding_pays_off(9, 16, 16)  # 1->16 3x3 stem: 16*(9+16) > 144
    assert isinstance(make_conv2d(1, 16, 3, gene=gene, generator=gen()), nn.Conv2d)
    assert isinstance(make_conv2d(32, 64, 3, gene=gene, generator=gen()), GeneConv2d)
    assert isinstance(make_linear(256, 10, gene=gene, generator=gen()), nn.Linear)
    assert isinstance(make_linear(256, 128, gene=gene, generator=gen()), GeneLinear)
    assert isinstance(make_linear(256, 128, gene=None, generator=gen()), nn.Linear)
    # the boundary: equal sizes stay dense
    assert not encoding_pays_off(32, 32, 16) and encoding_pays_off(33, 32, 16)


def test_weight_generated_once_per_forward_pass_not_per_step():
    model = build_network("digits", genes=4, seed=0)
    n_encoded = sum(is_encoded(m) for m in model.modules())
    g = model.gene.g

    class CountG(TorchFunctionMode):
        uses = 0

        def __torch_function__(self, func, types, args=(), kwargs=None):
            if any(a is g for a in args):
                CountG.uses += 1
            return func(*args, **(kwargs or {}))

    x = torch.rand(6, 2, 1, 8, 8, generator=gen())
    with CountG():
        model(x)
    assert CountG.uses == n_encoded  # one G product per encoded layer, for all 6 steps together


def test_bad_arguments_raise_input_error():
    with pytest.raises(InputError, match="genes"):
        GeneInteraction(0)
    with pytest.raises(InputError, match="GeneInteraction"):
        GeneLinear(4, 4, gene=nn.Linear(2, 2))
    with pytest.raises(InputError, match="in_channels"):
        GeneConv2d(0, 4, 3, gene=GeneInteraction(2))


def test_inference_reuses_the_generated_weight_until_the_encodings_change():
    from spikesmith.nn.gee import GeneInteraction, GeneLinear

    torch.manual_seed(0)
    gene = GeneInteraction(8)
    layer = GeneLinear(12, 5, gene=gene)
    x = torch.randn(4, 12)
    with torch.no_grad():
        w1 = layer.weight
        assert layer.weight is w1  # generated once
        y1 = layer(x)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    layer(x).sum().backward()  # grad enabled: generated in the graph, no cache involved
    opt.step()
    with torch.no_grad():
        w2 = layer.weight
        assert w2 is not w1 and not torch.equal(w2, w1)  # the step invalidated the cache
        torch.testing.assert_close(w2, (layer.x_post @ gene.g) @ layer.x_pre.T)
        gene.g.mul_(2.0)  # a change to the shared G also invalidates it
        torch.testing.assert_close(layer.weight, (layer.x_post @ gene.g) @ layer.x_pre.T)
        assert not torch.equal(layer(x), y1)
