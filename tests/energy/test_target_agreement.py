"""Operation counts from the Norse reference and from Lava agree on the same graph and input."""

import numpy as np

from factories import ff_graph, spikes
from spikesmith.energy import count_ops
from spikesmith.targets.lava import simulate as lava
from spikesmith.targets.reference import simulate as reference


def test_counts_agree_between_targets():
    g = ff_graph(seed=4, neuron="CubaLIF")
    x = spikes((15, 3, 6), 0.5, seed=2)
    a, b = count_ops(g, reference(g, x, dt=1e-3)), count_ops(g, lava(g, x, dt=1e-3))
    assert a.to_dict() == b.to_dict()
    assert a.synops > 0 and a.spikes > 0
    np.testing.assert_array_equal(a.layer("fc2").synops_per_step, b.layer("fc2").synops_per_step)
