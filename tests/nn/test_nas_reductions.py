"""Reduction cells of the MSE-NAS network: where they go, what they do to shapes and channels, and
how the spec checks and stores them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from spikesmith.compile.export import export_network
from spikesmith.errors import InputError
from spikesmith.evolve.nas import NasSpace, wire
from spikesmith.nn import build
from spikesmith.nn.families.nas import Wiring, node_key


def _wiring(cells=6, reductions=None, input_shape=(3, 32, 32), channels=4, seed=0):
    space = NasSpace(cells=cells, reductions=reductions)
    genome = space.sample(np.random.default_rng(seed))
    return space, wire(space.decode(genome), space=space, channels=channels, input_shape=input_shape)


def test_reduction_cells_follow_the_skeleton_and_spare_small_inputs():
    assert NasSpace(cells=6).reduction_cells((32, 32)) == (3, 5)
    assert NasSpace(cells=8).reduction_cells((32, 32)) == (3, 6)
    assert NasSpace(cells=3).reduction_cells((16, 20)) == (2, 3)
    assert NasSpace(cells=1).reduction_cells((32, 32)) == (1,)
    assert NasSpace(cells=6).reduction_cells((8, 8)) == ()  # the digits keep their full resolution
    assert NasSpace(cells=6, reductions=()).reduction_cells((32, 32)) == ()
    assert NasSpace(cells=6, reductions=[2]).reduction_cells((8, 8)) == (2,)


@pytest.mark.parametrize("bad", [(0,), (7,), (3, 3), (5, 3), ("x",)])
def test_bad_reductions_are_input_errors(bad):
    with pytest.raises(InputError, match="reductions"):
        NasSpace(cells=6, reductions=bad)


def test_digits_networks_are_unchanged_by_default():
    _, w = _wiring(cells=3, input_shape=(1, 8, 8))
    assert {p.level for p in w.populations} == {0} and {c.stride for c in w.connections} == {1}
    assert w.spatial(w.readout_src) == (8, 8) and w.pool == 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_levels_channels_and_shapes_of_the_seed_skeleton(seed):
    space, w = _wiring(seed=seed)
    level_of_cell = {c: (c >= 3) + (c >= 5) for c in range(1, 7)}
    for p in w.populations:
        base = p.source or p.name
        cell = 0 if base == "stem" else int(base[1:].split(".")[0])
        assert p.level == level_of_cell.get(cell, 0), p.name
        # every group of a cell's population is a block of 4 * 2**level channels
        assert all(b - a == 4 * 2 ** p.level for _, _, a, b in p.blocks), p.name
    for c in w.connections:
        if not c.feedback:
            assert c.stride == 2 ** (w.level(c.dst) - w.level(c.src)), c.name
            assert c.kernel >= c.stride, c.name  # every input position reaches the coarser layer
    model = build(w, seed=seed, dt=1e-3).eval()
    x = torch.rand(2, 3, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        out, rec = model(x, record=True)
    assert out.shape == (2, 3, 10)
    sizes = {32: 0, 16: 1, 8: 2}
    for p in w.populations:
        if p.kind == "relay":  # identity in torch: not recorded
            continue
        spikes = rec[node_key(p.name)]
        assert spikes.shape == (2, 3, p.channels, *w.spatial(p.name)), p.name
        assert sizes[spikes.shape[-1]] == p.level


def test_channel_growth_one_keeps_the_width():
    space = NasSpace(cells=3, reductions=(2,), channel_growth=1)
    w = wire(space.decode(space.sample(np.random.default_rng(0))), space=space, channels=4, input_shape=(1, 8, 8))
    assert {p.level for p in w.populations} == {0, 1}
    assert all(b - a == 4 for p in w.populations for _, _, a, b in p.blocks)
    with pytest.raises(InputError, match="channel_growth"):
        NasSpace(cells=3, channel_growth=0)


def test_odd_sizes_round_up_and_export_carries_the_strides():
    _, w = _wiring(cells=3, reductions=(1, 2, 3), input_shape=(1, 9, 7), channels=2)
    assert [w.spatial(n) for n in ("input", "c1.d0")] == [(9, 7), (5, 4)]
    assert {w.spatial(p.name) for p in w.populations if p.level == 3} == {(2, 1)}
    assert w.pool == 1  # a 2x1 readout source is not pooled
    graph = export_network(build(w, seed=0, dt=1e-3).eval())
    strides = {tuple(graph.nodes[node_key(c.name)].stride) for c in w.connections if not (c.relay or c.feedback)}
    assert (2, 2) in strides and (1, 1) in strides


def test_spec_checks_strides_and_reads_files_without_levels():
    _, w = _wiring(cells=3, reductions=(2,), input_shape=(1, 16, 16))
    reduced = next(c for c in w.connections if c.stride == 2)
    wrong = tuple(dataclasses.replace(c, stride=1) if c is reduced else c for c in w.connections)
    with pytest.raises(InputError, match=f"'{reduced.name}'.*needs stride 2"):
        dataclasses.replace(w, connections=wrong)
    assert Wiring.from_dict(w.to_dict()) == w
    # a model file written before reductions existed: no level, no stride -> full resolution
    _, plain = _wiring(cells=3, reductions=(), input_shape=(1, 8, 8))
    old = plain.to_dict()
    for p in old["populations"]:
        del p["level"]
    for c in old["connections"]:
        del c["stride"]
    assert Wiring.from_dict(old) == plain


def test_lava_runs_strided_connections_like_the_reference():
    pytest.importorskip("lava")
    from spikesmith.targets.lava import simulate as lava
    from spikesmith.targets.reference import simulate as reference

    _, w = _wiring(cells=3, reductions=(2, 3), input_shape=(2, 9, 9), channels=2, seed=3)
    model = build(w, seed=1, dt=1e-3)
    x = 2.0 * torch.rand(5, 4, *model.input_shape, generator=torch.Generator().manual_seed(0))
    for m in model.modules():  # batch-norm statistics of x itself
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
    model.train()
    with torch.no_grad():
        model(x)
    graph = export_network(model.eval().double())
    xs = x[:, :1].double().numpy()  # one sample: Lava is exact on the first sample of a batch
    ref, out = reference(graph, xs, dt=model.dt), lava(graph, xs, dt=model.dt)
    reduced = [node_key(p.name) for p in w.populations if p.level > 0 and p.kind != "relay"]
    assert sum(float(ref.activity[n].sum()) for n in reduced) > 0  # spikes reach the reduced stages
    for name in reduced:
        np.testing.assert_array_equal(out.activity[name], ref.activity[name], err_msg=name)
