"""Every registered network family: build small, save, load, export, simulate: the reference reproduces
the torch network's own spikes exactly, layer by layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikesmith import api, io
from spikesmith.nn import Network, build, load_model, registered_families, save_model
from spikesmith.nn.families.conv import ConvSpec
from spikesmith.nn.families.gee import ARCH_NAMES, GeeSpec
from spikesmith.targets.reference import simulate as reference


def nas_spec():
    from spikesmith.evolve.nas import NasSpace, wire

    space = NasSpace(cells=2)
    at = {n: i for i, n in enumerate(space.names)}
    genome = np.zeros(space.n_genes, dtype=int)
    names = [m.name for m in space.library]
    genome[at["c1.motif"]] = names.index("feedback_inhibition")
    genome[at["c1.feedback"]] = 1
    genome[at["c2.motif"]] = names.index("ff_inhibition")
    return wire(space.decode(space.repair(genome)), space=space, channels=3)


def nas_reduced_spec():
    """Three cells with reduction cells 2 and 3 on a 9x9 input (9 -> 5 -> 3): strides 2 and 4 (cell 3
    reads the stem too), odd sizes rounded up, channels doubled."""
    from spikesmith.evolve.nas import NasSpace, wire

    space = NasSpace(cells=3, reductions=(2, 3))
    at = {n: i for i, n in enumerate(space.names)}
    genome = np.zeros(space.n_genes, dtype=int)
    names = [m.name for m in space.library]
    genome[at["c1.motif"]] = names.index("ff_excitation")
    genome[at["c2.motif"]] = names.index("feedback_inhibition")
    genome[at["c2.feedback"]] = 1
    genome[at["c3.motif"]] = names.index("ff_inhibition")
    genome[at["c3.from0"]] = 1
    return wire(space.decode(space.repair(genome)), space=space, channels=2, input_shape=(2, 9, 9))


SMALL = 1 / 16  # channel width of the big GEE nets here

CASES = {
    "conv": lambda: ConvSpec(c1=4, c2=6, hidden=8, tau_steps=2.0, v_th=0.5, input_shape=(1, 8, 8), num_classes=5),
    "nas": nas_spec,
    "nas-reduced": nas_reduced_spec,
    **{f"gee-{a}": (lambda a=a: GeeSpec(arch=a, genes=8, width=1.0 if a in ("mlp", "digits") else SMALL))
       for a in ARCH_NAMES},
}


def test_every_registered_family_and_architecture_has_a_case():
    assert {k.split("-")[0] for k in CASES} == set(registered_families())
    assert {k.split("-", 1)[1] for k in CASES if k.startswith("gee-")} == set(ARCH_NAMES)
    assert {c.stride for c in nas_reduced_spec().connections} == {1, 2, 4}


def driven(model: Network, x: torch.Tensor) -> Network:
    """Batch-norm statistics from ``x`` and a positive shift, so every layer is driven to spike (eval mode)."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative: the statistics of x itself
            if m.affine:
                with torch.no_grad():
                    m.bias.fill_(0.5)
    model.train()
    with torch.no_grad():
        model(x)
    return model.eval()


@pytest.mark.parametrize("case", sorted(CASES))
def test_save_load_export_simulate_reproduces_torch_spikes(case, tmp_path):
    spec = CASES[case]()
    model = build(spec, seed=1)
    x = 2.0 * torch.rand(5, 6, *model.input_shape, generator=torch.Generator().manual_seed(0))
    driven(model, x)
    path = save_model(tmp_path / "model.pt", model, spec, steps=5, data="digits", encoding="direct")

    loaded, mf = load_model(path)
    assert mf.family == case.split("-")[0] and mf.steps == 5 and mf.encoding == "direct"
    for (ka, va), (kb, vb) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)

    graph = io.read_nir(io.write_nir(tmp_path / "model.nir", api.export_model(path)))
    assert graph.metadata["spikesmith.encoding"] == "direct"
    xs = x.double().numpy()
    trace = reference(graph, xs, dt=mf.dt)
    with torch.no_grad():
        out, recorded = loaded.double()(torch.as_tensor(xs), record=True)
    assert sum(float(s.sum()) for s in recorded.values()) > 0  # spikes flow: the comparison is not trivial
    for name, spikes in recorded.items():
        np.testing.assert_array_equal(trace.activity[name], spikes.numpy(), err_msg=name)
    np.testing.assert_array_equal(trace.output, out.numpy())


def test_spec_json_roundtrip_is_identity():
    for case, make in CASES.items():
        spec = make()
        fam = next(f for f in registered_families().values() if isinstance(spec, f.spec_type))
        from spikesmith.nn import spec_to_dict

        assert fam.spec_from_dict(spec_to_dict(spec)) == spec, case


BIG = {"gee-vgg11", "gee-resnet18", "gee-resnet19"}


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c in BIG else c for c in sorted(CASES)])
def test_model_file_compiles_to_lava_and_verifies(case, tmp_path):
    """The user's path: a saved model file straight into `compile --to lava --verify 8`: Lava (float) gives the
    reference's spikes on every population and the command's verdict is PASS."""
    from spikesmith.cli import main

    spec = CASES[case]()
    model = build(spec, seed=1)
    driven(model, 2.0 * torch.rand(5, 8, *model.input_shape, generator=torch.Generator().manual_seed(0)))
    path = save_model(tmp_path / "model.pt", model, spec, steps=5, data="digits", encoding="direct")
    assert main(["compile", str(path), "--to", "lava", "--verify", "8", "--calibration-samples", "8",
                 "-o", str(tmp_path / "lava")]) == 0
    report = io.read_json(tmp_path / "lava" / "verification.json")
    assert report["ok"] and report["samples"] == 8
    cmp = report["comparisons"][0]
    assert (cmp["a"], cmp["b"], cmp["samples"]) == ("norse", "lava-float", 8)
    assert cmp["identical"] and len(cmp["per_node"]) >= 2, cmp
