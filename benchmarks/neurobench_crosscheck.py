"""Cross-check spikesmith's op counts against NeuroBench's SynapticOperations and ActivationSparsity.

One small convolutional SNN (snnTorch neurons) runs once; NeuroBench's hooks and metrics
count it, and spikesmith counts the same spikes from a Trace recorded in the same run on
the equivalent NIR graph. Both see identical weights, inputs and spikes, so every
difference comes from the definitions (see docs/energy.md).

NeuroBench pulls torchaudio, numba and snnTorch, which must not change the project's
torch/numpy; run it from a separate venv that reuses the project's packages::

    python3.11 -m venv /tmp/nbvenv
    echo "$PWD/.venv/lib/python3.11/site-packages" > /tmp/nbvenv/lib/python3.11/site-packages/main.pth
    /tmp/nbvenv/bin/pip install --no-deps neurobench==2.3.0 snntorch
    PYTHONPATH=$PWD /tmp/nbvenv/bin/python benchmarks/neurobench_crosscheck.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys

import nir
import numpy as np
import torch
from torch import nn


def build_net(seed: int):
    """Conv(1->4, 3x3, s2, p1) -> LIF -> AvgPool 2 -> Flatten -> Linear 16->10 -> LIF -> Linear 10->3 -> LIF."""
    import snntorch as snn

    torch.manual_seed(seed)  # the benchmark script owns its process; library code never does this
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=2, padding=1),
        snn.Leaky(beta=0.6, threshold=0.4, init_hidden=True),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16, 10),
        snn.Leaky(beta=0.6, threshold=0.4, init_hidden=True),
        nn.Linear(10, 3),
        snn.Leaky(beta=0.6, threshold=0.4, init_hidden=True, output=True),
    )
    with torch.no_grad():
        gen = torch.Generator().manual_seed(seed)
        for m in net:
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.mul_(2.0)
                m.weight[torch.rand(m.weight.shape, generator=gen) < 0.3] = 0.0  # pruned synapses
    return net


def nir_graph(net) -> nir.NIRGraph:
    """The same network as a NIR graph (neuron parameters are irrelevant: spikes come from the trace)."""
    conv, fc1, fc2 = net[0], net[4], net[6]

    def lif(shape):
        one = np.ones(shape, dtype=np.float32)
        return nir.LIF(tau=one, r=one, v_leak=0 * one, v_threshold=one)

    def arr(t):
        return t.detach().numpy().astype(np.float32)

    return nir.NIRGraph(
        nodes={
            "input": nir.Input({"input": np.array([1, 8, 8])}),
            "conv": nir.Conv2d(input_shape=(8, 8), weight=arr(conv.weight), stride=2, padding=1, dilation=1,
                               groups=1, bias=arr(conv.bias)),
            "lif1": lif((4, 4, 4)),
            "pool": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
            "flat": nir.Flatten(input_type={"input": np.array([4, 2, 2])}, start_dim=0),
            "fc1": nir.Affine(weight=arr(fc1.weight), bias=arr(fc1.bias)),
            "lif2": lif((10,)),
            "fc2": nir.Affine(weight=arr(fc2.weight), bias=arr(fc2.bias)),
            "lif3": lif((3,)),
            "output": nir.Output({"output": np.array([3])}),
        },
        edges=[("input", "conv"), ("conv", "lif1"), ("lif1", "pool"), ("pool", "flat"), ("flat", "fc1"),
               ("fc1", "lif2"), ("lif2", "fc2"), ("fc2", "lif3"), ("lif3", "output")],
        type_check=False,
    )


def run_case(net, x_btf: torch.Tensor, label: str) -> dict:
    """Count one input batch ``(B, T, 1, 8, 8)`` with NeuroBench and with spikesmith."""
    from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
    from neurobench.models import SNNTorchModel

    from spikesmith.energy import count_ops
    from spikesmith.targets.trace import Trace

    names = ["conv", "lif1", "pool", "flat", "fc1", "lif2", "fc2", "lif3"]
    rec: dict[str, list] = {n: [] for n in names}
    handles = []
    for name, module in zip(names, net):
        def hook(_m, _inp, out, _name=name):
            rec[_name].append((out[0] if isinstance(out, tuple) else out).detach().numpy().copy())
        handles.append(module.register_forward_hook(hook))

    model = SNNTorchModel(net)
    model.register_hooks()
    sops, sparsity = SynapticOperations(), ActivationSparsity()
    with torch.no_grad():
        preds = model(x_btf)
    labels = torch.zeros(x_btf.shape[0])
    nb_sops = sops(model, preds, (x_btf, labels))
    nb_sparsity = sparsity(model, preds, (x_btf, labels))
    model.cleanup_hooks()
    for h in handles:
        h.remove()

    x_tb = x_btf.transpose(0, 1).numpy()
    activity = {"input": x_tb, **{n: np.stack(v) for n, v in rec.items()}}
    activity["output"] = activity["lif3"]
    trace = Trace(target="snntorch", dt=1e-3, input=x_tb, output=activity["output"], activity=activity)
    counts = count_ops(nir_graph(net), trace)
    B, T = x_btf.shape[:2]
    per_layer = {x.name: x for x in counts.layers}
    conn = ["conv", "fc1", "fc2"]  # the layers NeuroBench hooks (Linear/Conv); it skips pooling
    ss = {
        "synops_per_sample": counts.synops / B,
        "macs_per_sample": counts.macs / B,
        "synops_without_pooling_per_sample": sum(per_layer[n].synops for n in conn) / B,
        "macs_without_pooling_per_sample": sum(per_layer[n].macs for n in conn) / B,
        "dense_existing_synapses_per_sample": T * sum(per_layer[n].synapses for n in conn),
        "dense_all_weights_per_sample": T * sum(
            _dense_all(m, s) for m, s in ((net[0], (1, 8, 8)), (net[4], (16,)), (net[6], (10,)))),
        "activation_sparsity": counts.activation_sparsity,
        "per_layer": {n: {"synops": per_layer[n].synops / B, "macs": per_layer[n].macs / B,
                          "binary_input": per_layer[n].binary_input} for n in ("conv", "pool", "fc1", "fc2")},
    }
    return {"case": label, "B": B, "T": T, "neurobench": {**nb_sops, "ActivationSparsity": nb_sparsity},
            "spikesmith": ss}


def _dense_all(module, in_shape) -> int:
    """Synapses of ``module`` counting zero weights too (NeuroBench's 'Dense')."""
    with torch.no_grad():
        w = module.weight
        ones = torch.ones((1, *in_shape))
        if isinstance(module, nn.Conv2d):
            y = torch.nn.functional.conv2d(ones, torch.ones_like(w), None, module.stride, module.padding,
                                           module.dilation, module.groups)
        else:
            y = torch.nn.functional.linear(ones, torch.ones_like(w))
    return int(y.sum())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the figures to this JSON file")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        import neurobench  # noqa: F401
    except ImportError:
        print("neurobench is not importable here; see this script's docstring for the separate venv",
              file=sys.stderr)
        return 2
    net = build_net(args.seed)
    rng = np.random.default_rng(args.seed)
    B, T = 4, 6
    img = rng.random((B, 1, 1, 8, 8)).astype(np.float32)
    direct = torch.from_numpy(np.repeat(img, T, axis=1))  # analog input repeated every step
    rate = torch.from_numpy((rng.random((B, T, 1, 8, 8)) < img).astype(np.float32))  # rate-coded spikes
    results = [run_case(net, direct, "direct (analog) input"), run_case(net, rate, "rate-coded spike input")]
    for r in results:
        nb, ss = r["neurobench"], r["spikesmith"]
        print(f"== {r['case']} (B={r['B']}, T={r['T']}), per sample")
        rows = [
            ("ACs / SOPs", nb["Effective_ACs"], ss["synops_per_sample"], ss["synops_without_pooling_per_sample"]),
            ("MACs", nb["Effective_MACs"], ss["macs_per_sample"], ss["macs_without_pooling_per_sample"]),
            ("Dense", nb["Dense"], ss["dense_all_weights_per_sample"], ss["dense_existing_synapses_per_sample"]),
            ("ActivationSparsity", nb["ActivationSparsity"], ss["activation_sparsity"], ss["activation_sparsity"]),
        ]
        print(f"{'figure':<20}{'NeuroBench':>14}{'spikesmith':>14}{'ss (NB scope)':>16}")
        for name, a, b, c in rows:
            print(f"{name:<20}{a:>14.6g}{b:>14.6g}{c:>16.6g}")
        print("   spikesmith per layer:", json.dumps(ss["per_layer"]))
    if args.json:
        from spikesmith.io import write_json

        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
