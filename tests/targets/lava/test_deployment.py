"""Deployment-shaped graphs on every target: the reference and Lava float are spike-identical, the
fixed-point engine and Lava's bit-accurate models are bit-identical (spikes, outputs, u and v), on
the corpus, a demo-shaped conv net, a conv net with pooling, residual blocks and a recurrent net;
batched Lava equals unbatched Lava; spikesmith's Lava synapses equal Lava's own Dense, DelayDense
and Conv."""

import nir
import numpy as np
import pytest

from deploy_graphs import (assert_fixed_identical, demo_graph, pooled_conv_graph, recurrent_graph, residual_graph,
                           resnet_graph, vgg_graph)
from factories import spikes
from spikesmith.compile.graph import flatten
from spikesmith.targets.lava import simulate as lava
from test_delays import delayed_recurrent
from test_lowering import CORPUS_RUNS, assert_identical

GRAPHS = {
    "demo": lambda: demo_graph(seed=1),
    "pooled_conv": lambda: pooled_conv_graph(seed=1),
    "residual_identity": lambda: residual_graph("identity", seed=2),
    "residual_conv1x1": lambda: residual_graph("conv1x1", seed=2),
    "recurrent": lambda: recurrent_graph(seed=3),
}


def inputs(g, steps=10, batch=3, p=0.5, seed=1):
    flat = flatten(g)
    return spikes((steps, batch, *flat.output_shape(flat.inputs[0])), p, seed=seed)


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_float_identical_and_fixed_bit_identical(name):
    g = GRAPHS[name]()
    x = inputs(g)
    ref, _ = assert_identical(g, x)
    spiking = [n for n, node in flatten(g).nodes.items() if isinstance(node, nir.LIF | nir.CubaLIF)]
    assert all(0.0 < ref.activity[n].mean() < 1.0 for n in spiking), "every population must really spike"
    en, lf = assert_fixed_identical(g, x, batch_size=2)
    assert (lf.output == ref.output).mean() > 0.8


@pytest.mark.parametrize("make", [vgg_graph, resnet_graph], ids=["vgg", "resnet"])
def test_reduced_width_vgg_and_resnet_on_32x32_inputs(make):
    """8 samples x 4 steps of 32x32x3 direct input: every conv stays a conv, the shortcuts are aligned by
    delays, Lava float is spike-identical to the reference and Lava fixed point to the engine."""
    from spikesmith.compile.plan import build_plan

    g = make()
    plan = build_plan(flatten(g), 1e-3)
    assert all(c.kind == "conv" for c in plan.connections if len(plan.populations[c.dst].shape) == 3)
    x = np.random.default_rng(0).random((4, 8, 3, 32, 32))
    ref, lv = assert_identical(g, x)
    assert all(0.05 < ref.activity[p.name].mean() < 0.95 for p in plan.neurons)
    assert_fixed_identical(g, x)


@pytest.mark.parametrize("name,dt,steps", CORPUS_RUNS + [("lif_rockpool.nir", 1e-3, 30)])
def test_corpus_graphs_bit_identical_in_fixed_point(corpus, name, dt, steps):
    from spikesmith import io

    g = io.read_nir(corpus / name, type_check=name != "lif_rockpool.nir")
    en, _ = assert_fixed_identical(g, inputs(g, steps=steps, batch=2, p=0.3, seed=7), dt=dt)
    assert any(en.states[n][k].any() for n in en.states for k in "uv")  # the states really move


@pytest.mark.parametrize("fixed", [False, True])
def test_batched_lava_equals_lava_one_sample_at_a_time(fixed):
    """Copies side by side, groups back to back and one copy at a time give the same spikes."""
    for g, sizes in ((delayed_recurrent(), (5, 2, 1)), (residual_graph("identity", seed=2), (5, 1))):
        x = inputs(g, steps=8, batch=5)
        runs = [lava(g, x, dt=1e-3, fixed_point=fixed, batch_size=b, record_state=fixed) for b in sizes]
        assert [r.meta["groups"] for r in runs] == [-(-5 // b) for b in sizes]
        for r in runs[1:]:
            for n, a in runs[0].activity.items():
                np.testing.assert_array_equal(r.activity[n], a, err_msg=n)
            for n, s in runs[0].states.items():
                np.testing.assert_array_equal(r.states[n]["v"], s["v"], err_msg=n)


def _run_lava(build, steps: int, fixed: bool) -> np.ndarray:
    """Run a source -> synapse -> recorder network built by ``build(source) -> out port``; the recording."""
    import tempfile
    from pathlib import Path

    from spikesmith.targets.lava.compat import ensure_lava

    ensure_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    from spikesmith.targets.lava.recorder import Recorder

    with tempfile.TemporaryDirectory() as d:
        path = str(Path(d) / "rec.npy")
        port, src = build()
        rec = Recorder(shape=port.shape, steps=steps, path=path, dtype="float64")
        port.connect(rec.a_in)
        try:
            src.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt" if fixed else "floating_pt"))
        finally:
            src.stop()
        return np.load(path)


@pytest.mark.parametrize("fixed", [False, True])
def test_spikesmiths_synapses_compute_what_lavas_dense_delaydense_and_conv_compute(fixed):
    from spikesmith.targets.lava.compat import ensure_lava

    ensure_lava()
    from lava.proc.conv.process import Conv
    from lava.proc.dense.process import DelayDense, Dense
    from lava.proc.io.source import RingBuffer

    from spikesmith.compile.ops import ConvGeometry
    from spikesmith.targets.lava.synapses import Synapses

    rng = np.random.default_rng(0)
    steps, n_src, n_dst = 12, 20, 7
    s = (rng.random((n_src, steps)) < 0.4).astype(np.float64)
    w = rng.normal(0, 1, (n_dst, n_src))
    if fixed:
        w = 2 * rng.integers(-128, 128, (n_dst, n_src))  # even mixed-sign mantissas, as quantisation makes them
    exp = -3 if fixed else 0
    cases = [
        (lambda: Dense(weights=w, weight_exp=exp, num_weight_bits=8), dict(delay=0)),
        (lambda: DelayDense(weights=w, delays=np.full(w.shape, 2), weight_exp=exp, num_weight_bits=8), dict(delay=2)),
    ]
    for make, kw in cases:
        def stock():
            src = RingBuffer(data=s)
            p = make()
            src.s_out.connect(p.s_in)
            return p.a_out, src

        def ours():
            src = RingBuffer(data=s[:, None, :])
            p = Synapses(weights=w, src_size=n_src, dst_size=n_dst, width=1, weight_exp=exp, **kw)
            src.s_out.connect(p.s_in)
            return p.a_out, src

        mine, theirs = _run_lava(ours, steps, fixed)[:, :, 0], _run_lava(stock, steps, fixed)
        if fixed:
            np.testing.assert_array_equal(mine, theirs)
        else:  # Lava sums the weights of the spiking inputs, ours is a matrix product: equal to rounding
            np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-12 * np.abs(theirs).max())
    # a convolution (Lava's Conv has no weight exponent and works on (W, H, C) images)
    k = rng.normal(0, 1, (3, 2, 3, 3)) if not fixed else 2 * rng.integers(-64, 64, (3, 2, 3, 3))
    img = (rng.random((steps, 2, 5, 5)) < 0.4).astype(np.float64)
    geometry = ConvGeometry(stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1, in_shape=(2, 5, 5),
                            out_shape=(3, 5, 5))

    def stock_conv():
        src = RingBuffer(data=img.transpose(3, 2, 1, 0))  # (W, H, C, T)
        p = Conv(weight=k.transpose(0, 3, 2, 1)[:, ::-1, ::-1, :].copy(), input_shape=(5, 5, 2), padding=(1, 1),
                 stride=(1, 1))
        src.s_out.connect(p.s_in)
        return p.a_out, src

    def our_conv():
        src = RingBuffer(data=img.reshape(steps, -1).T[:, None, :])
        p = Synapses(weights=k, src_size=50, dst_size=75, width=1, conv=geometry)
        src.s_out.connect(p.s_in)
        return p.a_out, src

    theirs = _run_lava(stock_conv, steps, fixed).transpose(0, 3, 2, 1).reshape(steps, -1)  # (W, H, C) -> (C, H, W)
    mine = _run_lava(our_conv, steps, fixed)[:, :, 0]
    if fixed:
        np.testing.assert_array_equal(mine, theirs)
    else:  # Lava's float Conv computes in float32; ours in float64
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-5 * np.abs(theirs).max())
