"""Graphs exported by snnTorch reproduce snnTorch's own spikes when run at its dt (1e-4 s).

snnTorch's neurons reset one step after they fire (``reset_delay=True``, its default) and
may reset by subtraction; spikesmith recognises snnTorch's export convention, runs it with the
delayed reset, and takes ``--reset subtract`` for networks trained that way. The snnTorch side
is snnTorch's own modules, stepped in float64.

``snntorch.export_to_nir`` itself fails against nir 1.0.8's type inference, so the self-made
graphs below are assembled from snnTorch's own per-module conversion
(``snntorch.export_nir._extract_snntorch_module``): the node parameters are snnTorch's.
"""

from __future__ import annotations

import nir
import numpy as np
import pytest
import snntorch as snn
import torch
from snntorch.export_nir import _extract_snntorch_module

from factories import spikes
from spikesmith import api
from spikesmith.compile.conventions import snntorch_export_dt
from spikesmith.compile.graph import ResetRule
from spikesmith.targets.lava import simulate as lava
from spikesmith.targets.reference import simulate as reference

DT = 1e-4


def _linear(node) -> torch.nn.Linear:
    w = np.asarray(node.weight, dtype=np.float64)
    layer = torch.nn.Linear(w.shape[1], w.shape[0], dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(w))
        layer.bias.copy_(torch.as_tensor(np.asarray(getattr(node, "bias", np.zeros(w.shape[0])), dtype=np.float64)))
    return layer


def _decays(node):
    beta = torch.as_tensor(1 - DT / np.asarray(node.tau_mem if isinstance(node, nir.CubaLIF) else node.tau,
                                                dtype=np.float64))
    alpha = torch.as_tensor(1 - DT / np.asarray(node.tau_syn, dtype=np.float64)) if isinstance(node, nir.CubaLIF) else None
    return alpha, beta


def braille_in_snntorch(graph: nir.NIRGraph, mechanism: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hidden, output) spikes of the Braille RNN rebuilt from the graph as snnTorch modules."""
    nodes = graph.nodes
    sub = nodes["lif1"].nodes if "lif1" in nodes else {"lif": nodes["lif1.lif"], "w_rec": nodes["lif1.w_rec"]}
    a1, b1 = _decays(sub["lif"])
    a2, b2 = _decays(nodes["lif2"])
    hidden = snn.RSynaptic(alpha=a1, beta=b1, threshold=1.0, linear_features=a1.numel(), all_to_all=True,
                           reset_mechanism=mechanism).double()
    hidden.recurrent = _linear(sub["w_rec"])
    out = snn.Synaptic(alpha=a2, beta=b2, threshold=1.0, reset_mechanism=mechanism).double()
    fc1, fc2 = _linear(nodes["fc1"]), _linear(nodes["fc2"])
    steps, batch = x.shape[:2]
    spk1, syn1, mem1 = (torch.zeros(batch, a1.numel(), dtype=torch.float64) for _ in range(3))
    syn2, mem2 = (torch.zeros(batch, a2.numel(), dtype=torch.float64) for _ in range(2))
    h, o = [], []
    with torch.no_grad():
        for t in range(steps):
            spk1, syn1, mem1 = hidden(fc1(torch.as_tensor(x[t])), spk1.double(), syn1, mem1)
            spk2, syn2, mem2 = out(fc2(spk1.double()), syn2, mem2)
            h.append(spk1.numpy().copy())
            o.append(spk2.numpy().copy())
    return np.stack(h), np.stack(o)


@pytest.mark.parametrize("name,mechanism", [("braille_noDelay_bias_zero.nir", "zero"),
                                            ("braille_noDelay_noBias_subtract.nir", "subtract")])
def test_corpus_braille_graph_reproduces_snntorch(corpus, name, mechanism):
    graph = nir.read(str(corpus / name))
    x = spikes((150, 6, 12), 0.3, seed=2)
    hidden, output = braille_in_snntorch(graph, mechanism, x)
    assert output.sum() > 100  # the output layer fires: resets matter
    dt, rule, notice = api.resolve_semantics(graph, DT, "subtract" if mechanism == "subtract" else None)
    assert dt == DT and rule.timing == "delayed" and "snnTorch" in notice
    ref = reference(graph, x, dt=dt, reset=rule)
    np.testing.assert_array_equal(ref.activity["lif1.lif"], hidden)
    np.testing.assert_array_equal(ref.output, output)
    lv = lava(graph, x[:40, :2], dt=dt, reset=rule)
    np.testing.assert_array_equal(lv.output, output[:40, :2])


def test_nir_reset_does_not_reproduce_snntorch(corpus):
    """The delayed reset is what makes the difference (measured, so the test above means something)."""
    graph = nir.read(str(corpus / "braille_noDelay_bias_zero.nir"))
    x = spikes((150, 6, 12), 0.3, seed=2)
    _, output = braille_in_snntorch(graph, "zero", x)
    ref = reference(graph, x, dt=DT, reset=ResetRule(timing="immediate"))
    assert (ref.output == output).mean() < 0.9


def _snntorch_net(kind: str, mechanism: str, seed: int = 0):
    """Linear -> neuron -> Linear -> neuron in snnTorch, with per-neuron decays."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    sizes = [(5, 9), (9, 4)]
    layers = []
    for n_in, n_out in sizes:
        fc = torch.nn.Linear(n_in, n_out, dtype=torch.float64)
        with torch.no_grad():
            fc.weight.mul_(3.0)
        beta = torch.as_tensor(rng.uniform(0.6, 0.95, n_out))
        if kind == "Leaky":
            neuron = snn.Leaky(beta=beta, threshold=torch.ones(n_out, dtype=torch.float64), reset_mechanism=mechanism)
        else:
            neuron = snn.Synaptic(alpha=torch.as_tensor(rng.uniform(0.5, 0.9, n_out)), beta=beta,
                                  threshold=torch.ones(n_out, dtype=torch.float64),
                                  reset_mechanism=mechanism)
        layers += [fc, neuron.double()]
    return layers


def _graph_from_snntorch(layers) -> nir.NIRGraph:
    nodes = {"input": nir.Input(input_type={"input": np.array([layers[0].in_features])})}
    edges, prev = [], "input"
    for i, module in enumerate(layers):
        node = _extract_snntorch_module(module)
        name = f"m{i}"
        nodes[name] = node
        edges.append((prev, name))
        prev = name
    nodes["output"] = nir.Output(output_type={"output": np.array([layers[-2].out_features])})
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges)


def _run_snntorch(layers, x: np.ndarray) -> list[np.ndarray]:
    states = [None] * len(layers)
    rec = [[] for _ in layers]
    with torch.no_grad():
        for t in range(x.shape[0]):
            h = torch.as_tensor(x[t])
            for i, m in enumerate(layers):
                if isinstance(m, torch.nn.Linear):
                    h = m(h)
                    continue
                if states[i] is None:
                    states[i] = m.init_synaptic() if isinstance(m, snn.Synaptic) else (m.init_leaky(),)
                out = m(h, *states[i])
                h, states[i] = out[0].double(), tuple(out[1:])
                rec[i].append(h.numpy().copy())
    return [np.stack(r) for r in rec if r]


@pytest.mark.parametrize("kind", ["Leaky", "Synaptic"])
@pytest.mark.parametrize("mechanism", ["zero", "subtract"])
def test_snntorch_modules_exported_by_snntorch_match(kind, mechanism, tmp_path):
    layers = _snntorch_net(kind, mechanism)
    graph = _graph_from_snntorch(layers)
    path = tmp_path / "net.nir"
    nir.write(str(path), graph)
    graph = api.load_graph(path)
    assert snntorch_export_dt(graph) == pytest.approx(DT)
    x = spikes((60, 5, 5), 0.4, seed=1)
    expected = _run_snntorch(layers, x)
    assert all(e.sum() > 10 for e in expected)
    dt, rule, _ = api.resolve_semantics(graph, None, "subtract" if mechanism == "subtract" else None)
    assert dt == pytest.approx(DT)
    ref = reference(graph, x, dt=dt, reset=rule)
    np.testing.assert_array_equal(ref.activity["m1"], expected[0])
    np.testing.assert_array_equal(ref.output, expected[1])
    lv = lava(graph, x[:, :2], dt=dt, reset=rule)
    np.testing.assert_array_equal(lv.output, expected[1][:, :2])


def test_cli_runs_snntorch_graph_with_its_convention(corpus, tmp_path, capsys):
    from spikesmith.cli import main

    graph = nir.read(str(corpus / "braille_noDelay_bias_zero.nir"))
    x = spikes((80, 3, 12), 0.3, seed=4)
    np.save(tmp_path / "x.npy", x)
    _, output = braille_in_snntorch(graph, "zero", x)
    rc = main(["run", str(corpus / "braille_noDelay_bias_zero.nir"), "--input", str(tmp_path / "x.npy"),
               "-o", str(tmp_path / "y.npy"), "--dt", "1e-4"])
    assert rc in (0, None)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), output)
    err = capsys.readouterr().err
    assert "reset one step after they fire" in err and "--reset subtract" in err


def test_snntorch_convention_is_not_guessed_for_other_graphs(corpus):
    from factories import ff_graph

    assert snntorch_export_dt(ff_graph()) is None
    for name in ("cnn_sinabs.nir", "lif_norse.nir", "two_lif_neurons.nir"):
        graph = nir.read(str(corpus / name))
        assert snntorch_export_dt(graph) is None, name
        assert api.resolve_reset(graph) == (ResetRule(), None)
    # Rockpool's single LIF has tau/r = 1.04e-4 s: consistent, but not snnTorch's dt
    from spikesmith import io

    assert snntorch_export_dt(io.read_nir(corpus / "lif_rockpool.nir", type_check=False)) is None


def test_beta_zero_is_a_unit_decay_not_a_too_short_time_constant():
    """snnTorch's beta = 0 exports tau = dt in float32 (dt/tau = 1.0000000x): it runs, with decay 1."""
    torch.manual_seed(0)
    layers = [torch.nn.Linear(4, 3, dtype=torch.float64),
              snn.Leaky(beta=torch.zeros(3, dtype=torch.float32), threshold=torch.ones(3), reset_mechanism="zero").double()]
    graph = _graph_from_snntorch(layers)
    graph.nodes["m1"].tau = np.asarray(graph.nodes["m1"].tau, dtype=np.float32)
    graph.nodes["m1"].r = np.asarray(graph.nodes["m1"].r, dtype=np.float32)
    x = spikes((30, 3, 4), 0.5, seed=2) * 2.0
    expected = _run_snntorch(layers, x)[0]
    rule = api.resolve_reset(graph)[0]
    np.testing.assert_array_equal(reference(graph, x, dt=DT, reset=rule).output, expected)
    np.testing.assert_array_equal(lava(graph, x, dt=DT, reset=rule).output, expected)


def test_compiled_graph_stores_the_settings_and_needs_no_options(corpus, tmp_path, capsys):
    """`compile --to nir` writes the resolved dt and reset rule into the graph; the copy runs as snnTorch did."""
    from spikesmith.cli import main

    src = corpus / "braille_noDelay_noBias_subtract.nir"
    assert main(["compile", str(src), "--to", "nir", "--reset", "subtract", "-o", str(tmp_path / "b.nir")]) == 0
    stored = nir.read(str(tmp_path / "b.nir")).metadata
    assert stored["spikesmith.dt"] == DT and stored["spikesmith.reset"] == "subtract"
    assert stored["spikesmith.reset_timing"] == "delayed"
    capsys.readouterr()
    x = spikes((60, 3, 12), 0.3, seed=5)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(tmp_path / "b.nir"), "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")]) == 0
    assert "note:" not in capsys.readouterr().err
    _, output = braille_in_snntorch(nir.read(str(src)), "subtract", x)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), output)
