"""Counting a trace produced by the Norse reference simulator."""

from __future__ import annotations

import numpy as np

from factories import ff_graph, spikes
from spikesmith.energy import count_ops
from spikesmith.targets.reference import simulate


def test_counts_of_a_simulated_feedforward_net():
    g = ff_graph(seed=3, n_in=6, n_hidden=8, n_out=3)
    x = spikes((12, 4, 6), p=0.4, seed=5)
    trace = simulate(g, x, dt=1e-3)
    counts = count_ops(g, trace)
    w1 = np.asarray(g.nodes["fc1"].weight)
    w2 = np.asarray(g.nodes["fc2"].weight)
    s1 = trace.activity["n1"]
    s2 = trace.activity["n2"]
    assert set(np.unique(s1)) <= {0.0, 1.0} and s1.sum() > 0
    # independent count: every event times the nonzero weights in its column
    assert counts.layer("fc1").synops == int((x * (w1 != 0).sum(0)).sum())
    assert counts.layer("fc2").synops == int((s1 * (w2 != 0).sum(0)).sum())
    assert counts.layer("n1").spikes == int(s1.sum())
    assert counts.layer("n2").spikes == int(s2.sum())
    assert counts.neuron_updates == (8 + 3) * 12 * 4
    assert counts.layer("fc2").spike_driven and not counts.layer("fc1").spike_driven
    per_step = counts.spikes_per_step()
    np.testing.assert_array_equal(per_step, s1.sum(axis=(1, 2)) + s2.sum(axis=(1, 2)))


def test_analog_input_through_simulator_is_counted_as_macs():
    g = ff_graph(seed=1)
    x = np.random.default_rng(2).normal(size=(5, 2, 6))
    counts = count_ops(g, simulate(g, x, dt=1e-3))
    fc1 = counts.layer("fc1")
    assert not fc1.binary_input
    assert fc1.macs == 5 * 2 * 6 * 8 and fc1.synops == 0
