import nir
import numpy as np
import pytest
import torch

from spikesmith import io
from spikesmith.compile.export import export_snn
from spikesmith.compile.graph import META_DT, graph_dt
from spikesmith.compile.passes import fold_bn_into
from spikesmith.errors import GraphError
from spikesmith.evolve import build_conv_snn
from spikesmith.evolve.fitness import seeded_torch
from spikesmith.nn import SNN, NeuronParams


def small_net(seed=0):
    with seeded_torch(seed):
        m = build_conv_snn({"c1": 4, "c2": 6, "hidden": 0, "tau_steps": 3.0, "v_th": 1.0},
                           input_shape=(1, 8, 8), num_classes=3)
        m.train()
        m(torch.rand(3, 8, 1, 8, 8))
    return m.eval()


def test_batch_norm_folding_is_exact():
    conv = torch.nn.Conv2d(2, 3, 3, padding=1)
    bn = torch.nn.BatchNorm2d(3)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.uniform_(-1, 1)
    bn.eval()
    x = torch.randn(4, 2, 5, 5)
    torch.testing.assert_close(fold_bn_into(conv, bn)(x), bn(conv(x)), rtol=1e-5, atol=1e-5)


def test_export_roundtrip_through_nir_file(tmp_path):
    m = small_net()
    g = export_snn(m, dt=1e-3)
    path = io.write_nir(tmp_path / "m.nir", g)
    back = io.read_nir(path)
    assert graph_dt(back) == pytest.approx(1e-3)
    assert back.metadata["spikesmith.reset"] == "value"
    types = [type(back.nodes[n]).__name__ for n in sorted(back.nodes, key=lambda k: (len(k), k))]
    assert types.count("Conv2d") == 2 and types.count("LIF") == 3 and "BatchNorm2d" not in types
    lif = back.nodes["2_lifboxcell"] if "2_lifboxcell" in back.nodes else back.nodes["1_lifboxcell"]
    # tau in seconds: tau_steps * dt
    np.testing.assert_allclose(np.asarray(lif.tau), 3e-3)
    assert tuple(back.nodes["output"].output_type["output"]) == (3,)


def test_export_names_unsupported_layer():
    net = SNN([torch.nn.Linear(4, 3), torch.nn.Tanh(), NeuronParams().cell()], input_shape=(4,))
    with pytest.raises(GraphError, match="1_tanh.*Tanh"):
        export_snn(net)


def test_stored_dt_is_what_export_was_given():
    g = export_snn(small_net(), dt=5e-4)
    assert g.metadata[META_DT] == 5e-4
    assert isinstance(g, nir.NIRGraph)
