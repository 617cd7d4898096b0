"""The fixed-point engine without Lava: its float mode reproduces the reference; chunks, devices and
bad input."""

import numpy as np
import pytest
import torch

from deploy_graphs import demo_graph, pooled_conv_graph, recurrent_graph, residual_graph
from factories import ff_graph, spikes
from spikesmith.compile.graph import flatten
from spikesmith.compile.plan import build_plan
from spikesmith.errors import InputError
from spikesmith.targets import loihi
from spikesmith.targets.reference import simulate as reference

GRAPHS = {
    "cubalif": lambda: ff_graph(seed=3, neuron="CubaLIF"),
    "demo": lambda: demo_graph(seed=1),
    "pooled_conv": lambda: pooled_conv_graph(seed=1),
    "residual_identity": lambda: residual_graph("identity", seed=2),
    "residual_conv1x1": lambda: residual_graph("conv1x1", seed=2),
    "recurrent": lambda: recurrent_graph(seed=3),
}


def inputs(g, steps=16, batch=3, seed=1):
    flat = flatten(g)
    return spikes((steps, batch, *flat.output_shape(flat.inputs[0])), 0.5, seed=seed)


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_float_mode_gives_the_reference_spikes(name):
    """Lava's floating-point LIF arithmetic on the plan, without Lava's latencies, is the reference."""
    g = GRAPHS[name]()
    x = inputs(g)
    ref = reference(g, x, dt=1e-3)
    plan = build_plan(flatten(g), 1e-3)
    res = loihi.Engine(plan).run(x)
    spiking = [p.name for p in plan.neurons]
    assert any(ref.activity[n].mean() > 0.02 for n in spiking)
    for n in spiking:
        np.testing.assert_array_equal(res["activity"][n], ref.activity[n], err_msg=n)


def test_chunks_of_a_batch_are_independent_samples():
    g = recurrent_graph(seed=3)
    x = inputs(g, steps=15, batch=7)
    whole = loihi.simulate(g, x, dt=1e-3, record_state=True)
    chunked = loihi.simulate(g, x, dt=1e-3, record_state=True, batch_size=3, plan=loihi.prepare(
        build_plan(flatten(g), 1e-3), x))
    for n, a in whole.activity.items():
        np.testing.assert_array_equal(chunked.activity[n], a, err_msg=n)
    for n in whole.states:
        np.testing.assert_array_equal(chunked.states[n]["v"], whole.states[n]["v"])
    assert whole.states["rnn"]["u"].dtype == np.int64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_cuda_and_cpu_agree_bit_for_bit():
    g = pooled_conv_graph(seed=1)
    x = inputs(g)
    q = loihi.prepare(build_plan(flatten(g), 1e-3), x)
    cpu = loihi.simulate(g, x, dt=1e-3, plan=q, record_state=True, device="cpu")
    gpu = loihi.simulate(g, x, dt=1e-3, plan=q, record_state=True, device="cuda")
    for n in cpu.states:
        np.testing.assert_array_equal(gpu.states[n]["u"], cpu.states[n]["u"])
        np.testing.assert_array_equal(gpu.states[n]["v"], cpu.states[n]["v"])


@pytest.mark.parametrize("bad", [0, -3])
def test_batch_size_must_be_positive(bad):
    g = ff_graph(seed=1)
    with pytest.raises(InputError, match="--batch-size must be a positive number of samples"):
        loihi.simulate(g, inputs(g), dt=1e-3, batch_size=bad)
