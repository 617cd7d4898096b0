"""GEE architectures and the parameter report."""

from __future__ import annotations

import pytest
import torch

from spikesmith.errors import InputError
from spikesmith.evolve.gee import compression_table, gee_params_table, parameter_report
from spikesmith.evolve.gee.arch import ARCH_NAMES, build_network
from spikesmith.evolve.gee.layers import is_encoded
from spikesmith.evolve.gee.report import report_of


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_report_counts_match_built_models(arch):
    genes = 16 if arch == "digits" else 64
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
    assert len(lines) == 3 and "79.5%" in lines[1] and "53.2%" in lines[2]
    assert rep.to_dict()["layers"][0]["name"] == rep.layers[0].name


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
