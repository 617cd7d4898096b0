"""GEE architectures and the parameter report."""

from __future__ import annotations

import pytest
import torch

from spikesmith.errors import InputError
from spikesmith.evolve.gee import compression_table, gee_params_table, parameter_report
from spikesmith.nn.families.gee import ARCH_NAMES, build_network
from spikesmith.nn.gee import is_encoded
from spikesmith.evolve.gee.report import report_of


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_report_counts_match_built_models(arch):
    genes = 16 if arch in ("digits", "mlp") else 64
    encoded, dense = build_network(arch, genes=genes, seed=0), build_network(arch, genes=genes, encoded=False)
    rep = report_of(encoded, arch=arch, genes=genes)
    assert rep.encoded_total == n_params(encoded)
    assert rep.dense_total == n_params(dense)
    assert report_of(dense, arch=arch, genes=genes).compression == 0.0
    assert rep.encoded_layers == sum(is_encoded(m) for m in encoded.modules()) > 0
    assert dense.gene is None and not any(is_encoded(m) for m in dense.modules())


def test_resnet18_compression_matches_the_paper_range():
    c64, c160 = parameter_report("resnet18", 64).compression, parameter_report("resnet18", 160).compression
    assert 0.77 < c64 < 0.82 and 0.50 < c160 < 0.55
    assert c64 > parameter_report("resnet18", 96).compression > parameter_report("resnet18", 128).compression > c160


def test_report_renders_layers_fallbacks_and_totals():
    rep = parameter_report("digits", 16)
    text = rep.render()
    assert "dense (fallback)" in text and "encoded" in text and "gene-interaction" in text
    assert f"compression {100 * rep.compression:.1f}%" in text
    assert rep.fallback_layers >= 1  # the 1-channel stem
    table = gee_params_table("resnet18", [64, 160])
    assert table == compression_table("resnet18", [64, 160])
    lines = table.splitlines()
    for line, g in zip(lines[1:], (64, 160)):
        dense, encoded = resnet18_counts(g)
        assert f"{dense:,}" in line and f"{encoded:,}" in line and f"{100 * (1 - encoded / dense):.1f}%" in line
    assert rep.to_dict()["layers"][0]["name"] == rep.layers[0].name


def resnet18_counts(g: int) -> tuple[int, int]:
    """(dense, GEE-encoded) parameter counts of the CIFAR ResNet-18, counted here from its definition:
    a 3x3 stem of 64, stages of 64/128/256/512 channels x 2 basic blocks (1x1 projection shortcuts where
    the shape changes), batch norms, a 512 -> 10 readout with bias; a layer is encoded (g * (n_pre + n_post))
    only where that is smaller than its dense weight, and G (g x g) is counted once."""
    convs = [(3, 64, 3)]  # (C_in, C_out, k)
    bns = [64]
    c = 64
    for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        for block in range(2):
            convs += [(c, width, 3), (width, width, 3)]
            bns += [width, width]
            if block == 0 and (stride != 1 or c != width):
                convs.append((c, width, 1))
                bns.append(width)
            c = width
    linear = [(512, 10)]
    dense = sum(ci * co * k * k for ci, co, k in convs) + sum(2 * b for b in bns) + 512 * 10 + 10
    assert dense == 11_173_962  # the well-known size of the CIFAR ResNet-18 (10 classes)

    def enc(n_pre, n_post):
        return min(n_pre * n_post, g * (n_pre + n_post))

    encoded = (sum(enc(ci * k * k, co) for ci, co, k in convs) + sum(2 * b for b in bns)
               + sum(enc(i, o) for i, o in linear) + 10 + g * g)
    return dense, encoded


@pytest.mark.parametrize("arch,shape", [("digits", (1, 8, 8)), ("resnet18", (3, 32, 32)), ("vgg11", (3, 32, 32))])
def test_forward_shapes_and_seeded_init(arch, shape):
    a, b = build_network(arch, genes=32, seed=3), build_network(arch, genes=32, seed=3)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    c = build_network(arch, genes=32, seed=4)
    assert not torch.equal(a.gene.g, c.gene.g)
    out = a(torch.rand(2, 2, *shape, generator=torch.Generator().manual_seed(0)))
    assert out.shape == (2, 2, 10)
    assert set(out.unique().tolist()) <= {0.0, 1.0}


def test_unknown_arch_and_bad_genes_raise():
    with pytest.raises(InputError, match="resnet18"):
        build_network("resnet50", genes=8)
    with pytest.raises(InputError, match="genes"):
        parameter_report("digits", 0)
    with pytest.raises(InputError, match="genes"):
        compression_table("digits", [])
