import numpy as np
import pytest
import torch

from spikesmith.seeding import seeded_torch
from spikesmith.evolve.fitness import synaptic_operations
from spikesmith.evolve.nas.network import build_nas_net, wire
from spikesmith.nn.layers import SignedConv
from spikesmith.evolve.nas.space import NasSpace

from conftest import genome_with


def test_every_forward_path_into_a_population_has_equal_depth():
    sp = NasSpace(cells=3)
    rng = np.random.default_rng(1)
    for _ in range(15):
        w = wire(sp.decode(sp.sample(rng)), space=sp, channels=4)
        depth = {p.name: p.depth for p in w.populations} | {"input": 0}
        for c in w.connections:
            if c.feedback:
                assert c.src == c.dst
            else:
                assert depth[c.dst] == depth[c.src] + 1, c


def test_depth_skipping_edges_go_through_relays():
    sp = NasSpace(cells=1)
    w = wire(sp.decode(genome_with(sp, ["ff_inhibition"])), space=sp, channels=4)
    relays = [p for p in w.populations if p.kind == "relay"]
    assert [r.source for r in relays] == ["c1.d0"]
    assert any(c.src == relays[0].name and c.dst == "c1.d2" for c in w.connections)


def test_masks_follow_motif_edges_and_kernels():
    sp = NasSpace(cells=1)
    g = genome_with(sp, ["ff_inhibition"], kernels=0)  # all 3x3
    w = wire(sp.decode(g), space=sp, channels=2)
    (c,) = [c for c in w.connections if c.src == "c1.d1" and c.dst == "c1.d2"]
    m = w.mask(c)
    assert m.shape == (2, 2, 3, 3) and m.all()
    g5 = genome_with(sp, ["mixed"], kernels=1)
    w5 = wire(sp.decode(g5), space=sp, channels=2)
    (c5,) = [c for c in w5.connections if c.dst == "c1.d2" and not c.feedback]
    m5 = w5.mask(c5)
    # c1.d1 holds groups 1 (E) and 2 (I); c1.d2 holds 3 (E) and 4 (I): edge 2->4 does not exist
    assert m5[:2, :2].all() and m5[:2, 2:].all() and m5[2:, :2].all() and not m5[2:, 2:].any()


def test_dale_signs_hold_during_training():
    sp = NasSpace(cells=1)
    with seeded_torch(0):
        net = build_nas_net(genome_with(sp, ["feedback_inhibition"]), space=sp, channels=3)
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    x = torch.rand(3, 5, 1, 8, 8)
    for _ in range(3):
        opt.zero_grad()
        out = net(x)
        (out.sum() + sum(m.weight.sum() for m in net.modules() if isinstance(m, SignedConv))).backward()
        opt.step()
    convs = {n: m for n, m in net.named_modules() if isinstance(m, SignedConv)}
    assert convs
    for name, conv in convs.items():
        w = conv.weight.detach()
        sign = conv.sign.reshape(-1)
        assert (w[:, sign > 0] >= 0).all() and (w[:, sign < 0] <= 0).all(), name


def test_feedback_off_prunes_unused_groups_and_feedback_changes_the_output():
    sp = NasSpace(cells=1)
    off = wire(sp.decode(genome_with(sp, ["feedback_inhibition"], feedback=0)), space=sp, channels=2)
    on = wire(sp.decode(genome_with(sp, ["feedback_inhibition"], feedback=1)), space=sp, channels=2)
    assert off.population("c1.d1").channels == 2 and on.population("c1.d1").channels == 4
    assert not any(c.feedback for c in off.connections) and any(c.feedback for c in on.connections)


def test_forward_records_spikes_and_counts_synops():
    sp = NasSpace(cells=2)
    with seeded_torch(0):
        net = build_nas_net(genome_with(sp, ["mixed", "lateral_inhibition"]), space=sp, channels=4)
    x = torch.rand(4, 6, 1, 8, 8)
    out, rec = net(x, record=True)
    assert out.shape == (4, 6, 10)
    assert set(rec) >= {"stem", "c1_d0", "readout"}
    assert all(set(torch.unique(v).tolist()) <= {0.0, 1.0} for v in rec.values())
    ops = synaptic_operations(net, rec)
    assert ops > 0
    # twice the spikes of every source: twice the operations
    doubled = synaptic_operations(net, {k: 2 * v for k, v in rec.items()})
    assert doubled == pytest.approx(2 * ops)
    assert net.num_parameters() < sum(p.numel() for p in net.parameters())  # masked weights not counted


def test_signed_conv_unconstrained_channels_keep_raw_sign():
    conv = SignedConv(np.ones((2, 3, 1, 1)), np.array([1, -1, 0]))
    with torch.no_grad():
        conv.raw.fill_(-0.5)
    w = conv.weight
    assert (w[:, 0] == 0.5).all() and (w[:, 1] == -0.5).all() and (w[:, 2] == -0.5).all()
