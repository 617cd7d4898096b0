"""Every supported NIR node type, in graphs built with the nir API, runs identically on both targets."""

import nir
import numpy as np
import pytest

from factories import ff_graph, spikes
from spikesmith.targets.lava import simulate as lava
from spikesmith.targets.reference import simulate as reference

R = np.random.default_rng(11)


def lif(n, **kw):
    return nir.LIF(tau=np.full(n, 2e-3), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.full(n, 0.5),
                   v_reset=np.zeros(n), **kw)


def inp(*shape):
    return nir.Input(input_type={"input": np.array(shape)})


def out(*shape):
    return nir.Output(output_type={"output": np.array(shape)})


def chain(*nodes, type_check=True):
    names = [f"n{i}" for i in range(len(nodes))]
    return nir.NIRGraph(nodes=dict(zip(names, nodes)), edges=list(zip(names[:-1], names[1:])), type_check=type_check)


def g_threshold():
    return chain(inp(4), nir.Affine(weight=R.normal(0, 1, (5, 4)), bias=np.zeros(5)),
                 nir.Threshold(threshold=np.full(5, 0.3)), nir.Linear(weight=R.normal(0, 1, (3, 5))), lif(3), out(3))


def g_scale():
    return chain(inp(4), nir.Linear(weight=R.normal(0, 1, (4, 4))), nir.Scale(scale=np.array([0.5, 1, 2, 3.0])),
                 lif(4), out(4))


def g_conv1d():
    w = R.normal(0, 0.8, (3, 2, 3))
    return chain(inp(2, 10), nir.Conv1d(input_shape=10, weight=w, stride=1, padding=1, dilation=1, groups=1,
                                         bias=np.zeros(3)),
                 lif(30).__class__(tau=np.full((3, 10), 2e-3), r=np.ones((3, 10)), v_leak=np.zeros((3, 10)),
                                   v_threshold=np.full((3, 10), 0.5), v_reset=np.zeros((3, 10))),
                 nir.Flatten(input_type={"input": np.array([3, 10])}, start_dim=0), nir.Linear(weight=R.normal(0, 0.5, (4, 30))),
                 lif(4), out(4))


def _lif_shape(shape):
    return nir.LIF(tau=np.full(shape, 2e-3), r=np.ones(shape), v_leak=np.zeros(shape),
                   v_threshold=np.full(shape, 0.5), v_reset=np.zeros(shape))


def g_conv2d_sumpool():
    w = R.normal(0, 0.7, (4, 2, 3, 3))
    return chain(inp(2, 6, 6), nir.Conv2d(input_shape=(6, 6), weight=w, stride=1, padding=1, dilation=1, groups=1,
                                           bias=np.zeros(4)),
                 _lif_shape((4, 6, 6)), nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                                     padding=np.array([0, 0])),
                 nir.Conv2d(input_shape=(3, 3), weight=R.normal(0, 0.5, (2, 4, 3, 3)), stride=1, padding=0,
                            dilation=1, groups=1, bias=np.zeros(2)),
                 _lif_shape((2, 1, 1)), out(2, 1, 1), type_check=False)


def g_avgpool_grouped_conv():
    w = R.normal(0, 1.0, (4, 1, 3, 3))
    return chain(inp(2, 6, 6), nir.Conv2d(input_shape=(6, 6), weight=w, stride=2, padding=1, dilation=1, groups=2,
                                           bias=R.normal(0, 0.1, 4)),
                 _lif_shape((4, 3, 3)), nir.AvgPool2d(kernel_size=np.array([3, 3]), stride=np.array([1, 1]),
                                                     padding=np.array([0, 0])),
                 nir.Flatten(input_type={"input": np.array([4, 1, 1])}, start_dim=0),
                 nir.Affine(weight=R.normal(0, 2, (3, 4)), bias=np.zeros(3)), lif(3), out(3), type_check=False)


def g_readout(kind):
    n = 3
    if kind == "LI":
        node = nir.LI(tau=np.full(n, 3e-3), r=np.ones(n), v_leak=np.zeros(n))
    elif kind == "CubaLI":
        node = nir.CubaLI(tau_syn=np.full(n, 4e-3), tau_mem=np.full(n, 2e-3), r=np.ones(n), v_leak=np.zeros(n),
                          w_in=np.ones(n))
    else:
        node = nir.I(r=np.full(n, 0.5))
    return chain(inp(4), nir.Affine(weight=R.normal(0, 1, (6, 4)), bias=np.zeros(6)), lif(6),
                 nir.Linear(weight=R.normal(0, 1, (n, 6))), node, out(n), type_check=False)


def g_affine_readout():
    return chain(inp(4), nir.Linear(weight=R.normal(0, 1, (6, 4))), lif(6),
                 nir.Affine(weight=R.normal(0, 1, (2, 6)), bias=np.array([0.1, -0.2])), out(2))


def g_nested():
    n = 5
    inner = nir.NIRGraph(
        nodes={"input": inp(n), "lif": nir.CubaLIF(tau_syn=np.full(n, 3e-3), tau_mem=np.full(n, 2e-3), r=np.ones(n),
                                                    v_leak=np.zeros(n), v_threshold=np.full(n, 0.4),
                                                    v_reset=np.zeros(n), w_in=np.ones(n)),
               "w_rec": nir.Linear(weight=R.normal(0, 0.4, (n, n))), "output": out(n)},
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")], type_check=False)
    return nir.NIRGraph(
        nodes={"in": inp(3), "fc": nir.Linear(weight=R.normal(0, 1.5, (n, 3))), "rnn": inner, "out": out(n)},
        edges=[("in", "fc"), ("fc", "rnn"), ("rnn", "out")], type_check=False)


def g_delay():
    """Linear -> Delay (2, 1 and 0 steps per element) -> LIF."""
    return chain(inp(3), nir.Linear(weight=np.eye(3) * 2), nir.Delay(delay=np.array([2e-3, 1e-3, 0.0])), lif(3),
                 out(3), type_check=False)


GRAPHS = {
    "lif": lambda: ff_graph(seed=1),
    "cubalif": lambda: ff_graph(seed=2, neuron="CubaLIF"),
    "if": lambda: ff_graph(seed=3, neuron="IF"),
    "threshold": g_threshold,
    "scale": g_scale,
    "conv1d": g_conv1d,
    "conv2d_sumpool": g_conv2d_sumpool,
    "avgpool_grouped_conv": g_avgpool_grouped_conv,
    "li_readout": lambda: g_readout("LI"),
    "cubali_readout": lambda: g_readout("CubaLI"),
    "i_readout": lambda: g_readout("I"),
    "affine_readout": g_affine_readout,
    "nested_recurrent": g_nested,
    "delay": g_delay,
}


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_graph_runs_identically_on_both_targets(name):
    from spikesmith.compile.graph import flatten
    from spikesmith.compile.validate import validate

    g = GRAPHS[name]()
    flat = validate(g)
    shape = flat.output_shape(flat.inputs[0])
    x = spikes((12, 3, *shape), 0.5, seed=5) * 1.5
    ref = reference(g, x, dt=1e-3)
    lv = lava(g, x, dt=1e-3)
    for node, a in ref.activity.items():
        np.testing.assert_allclose(lv.activity[node], a, rtol=1e-9, atol=1e-9, err_msg=f"{name}: node {node}")
    spiking = [n for n, v in flatten(g).nodes.items() if isinstance(v, (nir.LIF, nir.CubaLIF, nir.IF, nir.Threshold))]
    assert any(ref.activity[n].mean() > 0.01 for n in spiking), "the graph must really spike"


def test_every_listed_node_type_is_covered():
    from spikesmith.compile.graph import flatten

    seen = set()
    for make in GRAPHS.values():
        g = make()
        seen |= {type(n).__name__ for n in g.nodes.values()}
        seen |= {type(n).__name__ for n in flatten(g).nodes.values()}
    listed = {"Input", "Output", "Affine", "Linear", "Scale", "Conv1d", "Conv2d", "Flatten", "SumPool2d", "AvgPool2d",
              "Threshold", "I", "IF", "LI", "LIF", "CubaLI", "CubaLIF", "NIRGraph", "Delay"}
    assert listed <= seen, listed - seen


def test_delay_shifts_spikes_by_its_steps():
    g = g_delay()
    x = spikes((12, 2, 3), 0.5, seed=1)
    ref = reference(g, x, dt=1e-3)
    d = ref.activity["n2"]
    np.testing.assert_array_equal(d[2:, :, 0], ref.activity["n1"][:-2, :, 0])  # element 0: 2 steps
    np.testing.assert_array_equal(d[1:, :, 1], ref.activity["n1"][:-1, :, 1])  # element 1: 1 step
    np.testing.assert_array_equal(d[:, :, 2], ref.activity["n1"][:, :, 2])  # element 2: none