import nir
import numpy as np
import pytest

from spikesmith.compile.graph import flatten, graph_dt
from spikesmith.errors import GraphError
from factories import ff_graph


def test_flatten_orders_topologically():
    flat = flatten(ff_graph())
    assert flat.order == ["in", "fc1", "n1", "fc2", "n2", "out"]
    assert flat.back_edges == frozenset()
    assert flat.output_shape("n1") == (8,)


def test_nested_graph_is_inlined_and_cycle_marked():
    n = 4
    inner = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([n])}),
            "lif": nir.LIF(tau=np.full(n, 2e-3), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n)),
            "w_rec": nir.Linear(weight=np.eye(n)),
            "output": nir.Output(output_type={"output": np.array([n])}),
        },
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
    )
    g = nir.NIRGraph(
        nodes={"in": nir.Input(input_type={"input": np.array([n])}), "rnn": inner,
               "out": nir.Output(output_type={"output": np.array([n])})},
        edges=[("in", "rnn"), ("rnn", "out")], type_check=False,
    )
    flat = flatten(g)
    assert "rnn.lif" in flat.nodes and "rnn.w_rec" in flat.nodes
    assert flat.back_edges == frozenset({("rnn.w_rec", "rnn.lif")})
    assert flat.inputs == ["in"] and flat.outputs == ["out"]


def test_dangling_node_is_named():
    g = ff_graph()
    g.nodes["stray"] = nir.Affine(weight=np.ones((2, 2)), bias=np.zeros(2))
    with pytest.raises(GraphError, match="stray"):
        flatten(g)


def test_graph_dt_reads_metadata_and_rejects_nonsense():
    g = ff_graph()
    assert graph_dt(g) is None
    g.metadata = {"spikesmith.dt": 1e-4}
    assert graph_dt(g) == 1e-4
    g.metadata = {"spikesmith.dt": -1.0}
    with pytest.raises(GraphError, match="positive"):
        graph_dt(g)
