"""Lava floating point must reproduce the Norse reference spike for spike."""

import nir
import numpy as np
import pytest
import torch

from factories import ff_graph, recurrent_front, spikes
from spikesmith.errors import GraphError
from spikesmith.targets.lava import simulate as lava
from spikesmith.targets.reference import simulate as reference


def assert_identical(g, x, dt=1e-3, reset=None):
    """Spikes identical; voltages of non-spiking neurons and stateless node values equal to rounding.

    Lava and Norse order their float64 sums differently (and stateless node values on Lava are
    recomputed from the recorded spikes over all steps at once), so real values agree to 1e-12.
    """
    from spikesmith.compile.graph import SPIKING_TYPES, flatten

    flat = flatten(g)
    ref = reference(g, x, dt=dt, reset=reset)
    lv = lava(g, x, dt=dt, reset=reset)
    spiking = {n for n, node in flat.nodes.items() if isinstance(node, SPIKING_TYPES)}
    spiking |= {o for o in flat.outputs if any(p in spiking for p in flat.predecessors(o))}
    for name, a in ref.activity.items():
        if name in flat.nodes and name not in spiking:
            np.testing.assert_allclose(lv.activity[name], a, rtol=1e-12, atol=1e-12, err_msg=f"node {name}")
        else:
            np.testing.assert_array_equal(lv.activity[name], a, err_msg=f"node {name}")
    return ref, lv


@pytest.mark.parametrize("neuron", ["LIF", "CubaLIF", "IF"])
def test_feed_forward_neurons(neuron):
    ref, _ = assert_identical(ff_graph(seed=3, neuron=neuron), spikes((25, 4, 6), 0.5, seed=1) * 2.0)
    assert ref.activity["n1"].mean() > 0.02  # the test exercises real spiking


def test_conv_network_with_pooling_and_flatten():
    from spikesmith.compile.export import export_network
    from spikesmith.evolve import build_conv_snn
    from spikesmith.seeding import seeded_torch

    with seeded_torch(2):
        m = build_conv_snn({"c1": 4, "c2": 6, "hidden": 8, "tau_steps": 2.0, "v_th": 0.5},
                           input_shape=(1, 8, 8), num_classes=3)
    m.eval()
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.weight.data.mul_(4.0)
    g = export_network(m)
    ref, lv = assert_identical(g, np.random.default_rng(0).random((6, 5, 1, 8, 8)))
    assert ref.activity["2"].mean() > 0.05  # the first LIF (its conv and batch norm are nodes 0 and 1)
    assert lv.meta["lags"]["2"] == 1


def test_recurrent_cubalif_with_biases():
    n = 5
    rng = np.random.default_rng(4)
    nodes = {
        **recurrent_front(rng, n),
        "rec": nir.Affine(weight=rng.normal(0, 0.5, (n, n)), bias=rng.normal(0, 0.1, n)),
        "out": nir.Output(output_type={"output": np.array([n])}),
    }
    g = nir.NIRGraph(nodes=nodes, edges=[("in", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "out")])
    ref, _ = assert_identical(g, spikes((30, 3, 3), 0.4, seed=2))
    assert ref.output.mean() > 0.02


def test_two_inputs_summed_into_one_population():
    rng = np.random.default_rng(5)
    n = 4
    nodes = {
        "in": nir.Input(input_type={"input": np.array([3])}),
        "a": nir.Linear(weight=rng.normal(0, 1.5, (n, 3))),
        "b": nir.Affine(weight=rng.normal(0, 1.5, (n, 3)), bias=np.full(n, 0.1)),
        "lif": nir.LIF(tau=np.full(n, 3e-3), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.full(n, 0.5),
                       v_reset=np.zeros(n)),
        "out": nir.Output(output_type={"output": np.array([n])}),
    }
    g = nir.NIRGraph(nodes=nodes, edges=[("in", "a"), ("in", "b"), ("a", "lif"), ("b", "lif"), ("lif", "out")])
    ref, _ = assert_identical(g, spikes((20, 2, 3), 0.5, seed=3))
    assert ref.output.mean() > 0.02


def test_paths_of_unequal_depth_are_aligned_by_a_synaptic_delay():
    n = 3
    lif = lambda: nir.LIF(tau=np.full(n, 2e-3), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.full(n, 0.5),  # noqa: E731
                          v_reset=np.zeros(n))
    nodes = {"in": nir.Input(input_type={"input": np.array([n])}), "w1": nir.Linear(weight=np.eye(n) * 2),
             "l1": lif(), "w2": nir.Linear(weight=np.eye(n)), "skip": nir.Linear(weight=np.eye(n)[::-1] * 0.7),
             "l2": lif(), "out": nir.Output(output_type={"output": np.array([n])})}
    edges = [("in", "w1"), ("w1", "l1"), ("l1", "w2"), ("w2", "l2"), ("in", "skip"), ("skip", "l2"), ("l2", "out")]
    g = nir.NIRGraph(nodes=nodes, edges=edges)
    ref, lv = assert_identical(g, spikes((12, 3, n), 0.5, seed=1))
    assert lv.meta["lags"]["l2"] == 2 and ref.output.mean() > 0.05
    from spikesmith.compile.graph import flatten
    from spikesmith.compile.plan import build_plan

    skip = [c for c in build_plan(flatten(g), 1e-3).connections if c.src == "in" and c.dst == "l2"]
    assert [c.lag_delay for c in skip] == [1] and skip[0].delay == 0  # Lava only: the graph is unchanged


def per_neuron_graph(neuron: str) -> nir.NIRGraph:
    """ff_graph with time constants and thresholds that differ from neuron to neuron."""
    g = ff_graph(seed=4, neuron=neuron)
    for name in ("n1", "n2"):
        node = g.nodes[name]
        n = node.v_threshold.shape[0]
        if neuron == "LIF":
            node.tau = np.linspace(1.5e-3, 6e-3, n)
        elif neuron == "CubaLIF":
            node.tau_mem, node.tau_syn = np.linspace(1.5e-3, 5e-3, n), np.linspace(4e-3, 1.2e-3, n)
        node.v_threshold = np.linspace(0.4, 0.9, n)
    return g


@pytest.mark.parametrize("neuron", ["LIF", "CubaLIF"])
def test_per_neuron_time_constants_lower_to_one_process(neuron):
    ref, lv = assert_identical(per_neuron_graph(neuron), spikes((25, 3, 6), 0.5, seed=2) * 2.0)
    assert ref.activity["n1"].mean() > 0.02
    assert lv.meta["processes"] <= 9  # input, 2 synapses, 2 populations, readouts: no split populations


@pytest.mark.parametrize("neuron", ["LIF", "CubaLIF", "IF"])
@pytest.mark.parametrize("mode,timing", [("subtract", "immediate"), ("value", "delayed"), ("subtract", "delayed")])
def test_reset_rules_identical_on_both_targets(neuron, mode, timing):
    from spikesmith.compile.graph import ResetRule

    rule = ResetRule(mode=mode, timing=timing)
    g = ff_graph(seed=3, neuron=neuron)
    x = spikes((25, 3, 6), 0.5, seed=1) * 2.0
    ref, _ = assert_identical(g, x, reset=rule)
    nir_rule = reference(g, x, dt=1e-3)
    assert ref.activity["n1"].mean() > 0.05
    if not (mode == "value" and neuron != "CubaLIF"):  # a delayed reset to a value only changes CubaLIF
        assert not np.array_equal(nir_rule.activity["n1"], ref.activity["n1"]), "the rule made no difference"


def test_reset_rule_is_read_from_graph_metadata():
    from spikesmith.compile.graph import META_RESET, META_RESET_TIMING

    g = ff_graph(seed=3, neuron="CubaLIF")
    x = spikes((25, 2, 6), 0.5, seed=1) * 2.0
    g.metadata = {META_RESET: "subtract", META_RESET_TIMING: "delayed"}
    ref, lv = assert_identical(g, x)
    assert ref.meta["reset"] == lv.meta["reset"] == "reset by subtraction, delayed"


def test_subtraction_with_nonzero_reset_value_is_rejected():
    from spikesmith.compile.graph import ResetRule

    g = ff_graph(neuron="LIF")
    g.nodes["n1"].v_reset = np.full(8, -0.1)
    with pytest.raises(GraphError, match="'n1'.*subtraction needs v_reset = 0"):
        lava(g, spikes((5, 1, 6)), dt=1e-3, reset=ResetRule(mode="subtract"))


CORPUS_RUNS = [
    ("lif_norse.nir", 1e-3, 40),
    ("two_lif_neurons.nir", 1e-4, 60),
    ("braille_noDelay_bias_zero.nir", 1e-4, 40),
    ("braille_noDelay_noBias_subtract.nir", 1e-4, 40),
    ("cnn_sinabs.nir", 1e-3, 6),
]


@pytest.mark.parametrize("name,dt,steps", CORPUS_RUNS)
def test_corpus_graphs_identical_on_both_targets(corpus, name, dt, steps):
    from spikesmith.compile.graph import flatten

    g = nir.read(str(corpus / name))
    shape = flatten(g).output_shape(flatten(g).inputs[0])
    assert_identical(g, spikes((steps, 2, *shape), 0.3, seed=7), dt=dt)


def test_rockpool_graph_is_rejected_with_its_defect(corpus):
    from spikesmith import io

    with pytest.raises(GraphError, match=r"lif_rockpool\.nir: nir rejects the graph's types.*type mismatch"):
        io.read_nir(corpus / "lif_rockpool.nir")


def test_rockpool_graph_runs_without_type_checking(corpus):
    from spikesmith import io

    g = io.read_nir(corpus / "lif_rockpool.nir", type_check=False)
    assert_identical(g, spikes((30, 2, 1), 0.5, seed=3))


def test_recurrent_population_that_never_rests_between_samples():
    # positive biases keep the population firing after every sample; each new sample must still start at rest
    n = 6
    rng = np.random.default_rng(8)
    nodes = {
        "in": nir.Input(input_type={"input": np.array([3])}),
        "fc": nir.Affine(weight=rng.normal(0, 1, (n, 3)), bias=np.full(n, 0.6)),
        "lif": nir.LIF(tau=np.full(n, 2e-3), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.full(n, 0.5),
                       v_reset=np.zeros(n)),
        "rec": nir.Linear(weight=rng.normal(0, 0.8, (n, n))),
        "out": nir.Output(output_type={"output": np.array([n])}),
    }
    g = nir.NIRGraph(nodes=nodes, edges=[("in", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "out")])
    ref, lv = assert_identical(g, spikes((10, 6, 3), 0.4, seed=4))
    assert ref.output[-1].mean() > 0.2  # still firing when each sample ends


def hidden_nonspiking_graph(kind: str) -> nir.NIRGraph:
    """in -> Affine -> LI/CubaLI/I (hidden, sends its voltage) -> Affine -> LIF -> out."""
    rng = np.random.default_rng(6)
    n = 7
    hidden = {
        "LI": lambda: nir.LI(tau=np.linspace(2e-3, 5e-3, n), r=np.ones(n), v_leak=np.zeros(n)),
        "CubaLI": lambda: nir.CubaLI(tau_syn=np.full(n, 3e-3), tau_mem=np.full(n, 2e-3), r=np.ones(n),
                                     v_leak=np.full(n, 0.1), w_in=np.ones(n)),
        "I": lambda: nir.I(r=np.full(n, 0.3)),
    }[kind]()
    nodes = {"in": nir.Input(input_type={"input": np.array([4])}),
             "fc1": nir.Affine(weight=rng.normal(0, 1.5, (n, 4)), bias=rng.normal(0, 0.1, n)),
             "h": hidden,
             "fc2": nir.Linear(weight=rng.normal(0.3, 1.0, (3, n))),
             "o": nir.LIF(tau=np.full(3, 2e-3), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.full(3, 0.3),
                          v_reset=np.zeros(3)),
             "out": nir.Output(output_type={"output": np.array([3])})}
    edges = [("in", "fc1"), ("fc1", "h"), ("h", "fc2"), ("fc2", "o"), ("o", "out")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


@pytest.mark.parametrize("kind", ["LI", "CubaLI", "I"])
def test_hidden_non_spiking_population_sends_its_voltage(kind):
    from deploy_graphs import assert_fixed_identical

    g = hidden_nonspiking_graph(kind)
    x = spikes((20, 3, 4), 0.5, seed=3)
    ref, lv = assert_identical(g, x)
    assert 0.02 < ref.output.mean() < 0.98
    _, lf = assert_fixed_identical(g, x)
    assert (lf.output == ref.output).mean() > 0.9


def test_wide_non_spiking_layer_keeps_fixed_point_sums_within_32_bits():
    """64 LI neurons with positive weights: unshifted, the next synapse's sums would pass 2**31."""
    from deploy_graphs import assert_fixed_identical
    from spikesmith.compile.graph import flatten
    from spikesmith.compile.plan import build_plan
    from spikesmith.targets import loihi

    rng = np.random.default_rng(0)
    n = 64
    nodes = {"in": nir.Input(input_type={"input": np.array([20])}),
             "f1": nir.Linear(weight=rng.uniform(0, 1, (n, 20))),
             "h": nir.LI(tau=np.full(n, 4e-3), r=np.ones(n), v_leak=np.zeros(n)),
             "f2": nir.Linear(weight=rng.uniform(0, 1, (4, n)) / n * 3.0),
             "o": nir.LIF(tau=np.full(4, 2e-3), r=np.ones(4), v_leak=np.zeros(4), v_threshold=np.ones(4),
                          v_reset=np.zeros(4)),
             "out": nir.Output(output_type={"output": np.array([4])})}
    g = nir.NIRGraph(nodes=nodes, edges=[("in", "f1"), ("f1", "h"), ("h", "f2"), ("f2", "o"), ("o", "out")])
    x = spikes((15, 2, 20), 0.5, seed=1)
    qplan = loihi.prepare(build_plan(flatten(g), 1e-3), x)
    assert qplan.populations["h"].msg_shift > 0
    _, lf = assert_fixed_identical(g, x, plan=qplan)
    assert (lf.output == reference(g, x, dt=1e-3).output).mean() > 0.95


def test_conv_after_a_non_spiking_layer_stays_a_convolution():
    """Graded voltages into a convolution: the conv synapse carries a weight exponent like a dense one."""
    from deploy_graphs import assert_fixed_identical
    from spikesmith.compile.graph import flatten
    from spikesmith.compile.plan import build_plan

    rng = np.random.default_rng(1)
    nodes = {"in": nir.Input(input_type={"input": np.array([1, 4, 4])}),
             "c1": nir.Conv2d(input_shape=(4, 4), weight=rng.normal(0.5, 0.5, (2, 1, 3, 3)), stride=1, padding=1,
                              dilation=1, groups=1, bias=np.zeros(2)),
             "h": nir.LI(tau=np.full((2, 4, 4), 3e-3), r=np.ones((2, 4, 4)), v_leak=np.zeros((2, 4, 4))),
             "c2": nir.Conv2d(input_shape=(4, 4), weight=rng.normal(0.5, 0.5, (2, 2, 3, 3)), stride=1, padding=1,
                              dilation=1, groups=1, bias=np.zeros(2)),
             "o": nir.IF(r=np.ones((2, 4, 4)), v_threshold=np.full((2, 4, 4), 8.0), v_reset=np.zeros((2, 4, 4))),
             "out": nir.Output(output_type={"output": np.array([2, 4, 4])})}
    g = nir.NIRGraph(nodes=nodes, edges=[("in", "c1"), ("c1", "h"), ("h", "c2"), ("c2", "o"), ("o", "out")],
                     type_check=False)
    assert [c.kind for c in build_plan(flatten(g), 1e-3).connections] == ["conv", "conv"]
    x = spikes((10, 2, 1, 4, 4), 0.5, seed=2)
    ref, _ = assert_identical(g, x)
    assert 0.05 < ref.output.mean() < 0.95
    _, lf = assert_fixed_identical(g, x)
    assert (lf.output == ref.output).mean() > 0.9
