"""The one torch -> NIR exporter and its batch-norm folding pass."""

import nir
import numpy as np
import pytest
import torch
from torch import nn

from spikesmith import io
from spikesmith.compile.export import export_network
from spikesmith.compile.graph import META_DT, flatten, graph_dt
from spikesmith.compile.passes import fold_norms, materialise
from spikesmith.errors import GraphError
from spikesmith.nn import Network, NeuronParams, Neurons, build
from spikesmith.nn.families.conv import ConvSpec
from spikesmith.nn.layers import PopulationNorm
from spikesmith.targets.reference import simulate as reference


def small_net(seed=0):
    m = build(ConvSpec(c1=4, c2=6, tau_steps=3.0, v_th=1.0, input_shape=(1, 8, 8), num_classes=3), seed=seed)
    m.train()
    with torch.no_grad():
        m(torch.rand(3, 8, 1, 8, 8))
    return m.eval()


def _random_bn(bn, gen):
    with torch.no_grad():
        bn.running_mean.copy_(torch.rand(bn.num_features, generator=gen) * 2 - 1)
        bn.running_var.copy_(torch.rand(bn.num_features, generator=gen) * 1.5 + 0.5)
        if bn.affine:
            bn.weight.copy_(torch.rand(bn.num_features, generator=gen) + 0.5)
            bn.bias.copy_(torch.rand(bn.num_features, generator=gen) * 2 - 1)
    return bn.eval()


def _run(nodes, x):
    values = {"input": x}
    for name, m, ins in nodes:
        values[name] = m(sum(values[i] for i in ins))
    return values[nodes[-1][0]]


@pytest.mark.parametrize("case", ["conv+bn", "linear+bn", "two convs summed into one norm", "residual branches"])
def test_folding_keeps_the_computation(case):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 6, 6, generator=gen, dtype=torch.float64)
    conv = lambda k=3: nn.Conv2d(3, 5, k, padding=k // 2).double()  # noqa: E731
    if case == "conv+bn":
        nodes = [("c", conv(), ("input",)), ("bn", _random_bn(nn.BatchNorm2d(5).double(), gen), ("c",))]
    elif case == "linear+bn":
        x = x.flatten(1)
        nodes = [("l", nn.Linear(108, 7).double(), ("input",)), ("bn", _random_bn(nn.BatchNorm1d(7).double(), gen), ("l",))]
    elif case == "two convs summed into one norm":
        norm = PopulationNorm(5).double()
        _random_bn(norm.bn, gen)
        with torch.no_grad():
            norm.log_gain.uniform_(-0.5, 0.5, generator=gen)
            norm.bias.uniform_(-1, 1, generator=gen)
        nodes = [("a", conv(3), ("input",)), ("b", conv(1), ("input",)), ("n", norm.eval(), ("a", "b")),
                 ("reader", nn.Identity(), ("n",))]
    else:  # conv->bn and a 1x1 conv->bn shortcut, summed by their reader
        nodes = [("c1", conv(), ("input",)), ("bn1", _random_bn(nn.BatchNorm2d(5).double(), gen), ("c1",)),
                 ("sc", conv(1), ("input",)), ("bn2", _random_bn(nn.BatchNorm2d(5).double(), gen), ("sc",)),
                 ("sum", nn.Identity(), ("bn1", "bn2"))]
    folded = fold_norms(nodes)
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, PopulationNorm)) for _, m, _ in folded)
    with torch.no_grad():
        want, got = _run(nodes, x), _run(folded, x)
    assert float((want - got).norm() / want.norm()) < 1e-12


def test_a_norm_after_a_non_weight_layer_is_named():
    nodes = [("n", Neurons(NeuronParams().cell()), ("input",)), ("bn", nn.BatchNorm2d(2), ("n",))]
    with pytest.raises(GraphError, match="node 'bn'.*not convolution or linear"):
        fold_norms(nodes)


def test_materialise_keeps_a_generated_weight_and_its_metadata():
    from spikesmith.nn.gee import GeneConv2d, GeneInteraction

    gene = GeneInteraction(4, generator=torch.Generator().manual_seed(1))
    layer = GeneConv2d(2, 3, 3, gene=gene, padding=1, generator=torch.Generator().manual_seed(2))
    plain = materialise(layer)
    assert isinstance(plain, nn.Conv2d) and torch.equal(plain.weight, layer.weight)
    assert set(plain.nir_meta) >= {"gee.x_pre", "gee.x_post", "gee.g"}


def test_export_roundtrip_through_nir_file(tmp_path):
    g = export_network(small_net(), dt=1e-3)
    back = io.read_nir(io.write_nir(tmp_path / "m.nir", g))
    assert graph_dt(back) == pytest.approx(1e-3)
    assert back.metadata["spikesmith.reset"] == "value"
    types = [type(n).__name__ for n in back.nodes.values()]
    assert types.count("Conv2d") == 2 and types.count("LIF") == 3 and "BatchNorm2d" not in types
    lif = next(n for n in back.nodes.values() if isinstance(n, nir.LIF))
    np.testing.assert_allclose(np.asarray(lif.tau), 3e-3)  # tau in seconds: tau_steps * dt
    assert tuple(back.nodes["output"].output_type["output"]) == (3,)


def test_export_names_unsupported_layer():
    net = Network.sequential([nn.Linear(4, 3), nn.Tanh(), Neurons(NeuronParams().cell())], input_shape=(4,))
    with pytest.raises(GraphError, match="node '1'.*Tanh"):
        export_network(net)


def test_stored_dt_is_what_export_was_given():
    g = export_network(small_net(), dt=5e-4)
    assert g.metadata[META_DT] == 5e-4


def test_recurrent_neurons_export_as_a_back_edge_and_run_identically():
    gen = torch.Generator().manual_seed(3)
    rec = nn.Linear(5, 5, bias=False).double()
    with torch.no_grad():
        rec.weight.copy_(torch.randn(5, 5, generator=gen, dtype=torch.float64))
    fc = nn.Linear(3, 5).double()
    with torch.no_grad():
        fc.weight.copy_(torch.rand(5, 3, generator=gen, dtype=torch.float64))
        fc.bias.zero_()
    net = Network([("fc", fc, ("input",)),
                   ("hidden", Neurons(NeuronParams(tau_steps=2.0, v_th=0.5).cell(), recurrent=rec), ("fc",))],
                  input_shape=(3,)).eval()
    g = export_network(net)
    assert ("hidden_rec", "hidden") in flatten(g).back_edges
    x = np.random.default_rng(0).random((12, 4, 3)) * 2
    with torch.no_grad():
        out = net(torch.as_tensor(x)).numpy()
    assert out.mean() > 0.05
    np.testing.assert_array_equal(reference(g, x, dt=1e-3).output, out)
