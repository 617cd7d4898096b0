"""Training throughput and peak memory of the same SNN in spikesmith (Norse) and in snnTorch.

Run:  .venv/bin/python benchmarks/train_throughput.py [--device cpu|cuda] [--batch B] [--steps T]
          [--precision fp32,bf16] [--nets digits,nmnist] [--iters N] [--snnlib /tmp/snnlib] [--json out.json]

Networks: ``digits`` is the default conv SNN of ``spikesmith train`` (the conv family, c1=12, c2=32 on
1x8x8); ``nmnist`` is a 3-conv SNN on 2x34x34 N-MNIST-shaped random frames (conv 32 s1, 64 s2, 64 s2,
each BN + LIF, then Linear -> 10 LIF). One training step is what spikesmith.train.fit does: forward
under autocast (bf16 rows only), cross-entropy on the spike counts, backward, AdamW step.

Variants, same layers, batch, time steps and precision:
  spikesmith            our SNN runner: stateless layers on all T steps at once, Norse LIFBoxCell stepped
  snntorch merged       the same runner with snntorch.Leaky in place of the Norse cell
  snntorch per-step     snnTorch's idiom: nn.Sequential(..., Leaky(init_hidden=True)) called once per step
The snnTorch neurons are built to be the same neuron (beta = 1 - dt/tau, zero reset without delay,
fast-sigmoid surrogate = Norse's SuperSpike, input scale dt/tau folded into the preceding layer); the
``agree`` column is the fraction of output spikes equal to spikesmith's on one training-mode batch
(the per-step idiom normalises each step by its own batch statistics, so it is a near, not exact, twin).

Peak memory: on CUDA the allocator's peak during the timed steps; on CPU each case runs in its
own process and reports its peak resident set size minus its size before the model was built.
Needs snnTorch importable (e.g. ``pip install --no-deps --target /tmp/snnlib snntorch``, then
``--snnlib /tmp/snnlib``); without it only the spikesmith rows are measured.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spikesmith.nn import Network, NeuronParams, Neurons, build as build_net  # noqa: E402
from spikesmith.nn.families.conv import ConvSpec  # noqa: E402
from spikesmith.train import logits_of  # noqa: E402

VARIANTS = ("spikesmith", "snntorch merged", "snntorch per-step")


def make_net(name: str, seed: int) -> tuple[Network, tuple[int, ...]]:
    """The spikesmith network ``name`` and its input shape (C, H, W)."""
    g = torch.random.fork_rng(devices=[])
    with g:
        torch.manual_seed(seed)
        if name == "digits":
            shape = (1, 8, 8)
            return build_net(ConvSpec(c1=12, c2=32, hidden=0, tau_steps=2.0, v_th=0.5, input_shape=shape,
                                      num_classes=10), seed=seed), shape
        if name == "nmnist":
            shape, neuron, layers, c_in, hw = (2, 34, 34), NeuronParams(tau_steps=2.0, v_th=0.5), [], 2, 34
            for c_out, stride in ((32, 1), (64, 2), (64, 2)):
                layers += [nn.Conv2d(c_in, c_out, 3, padding=1, stride=stride, bias=False), nn.BatchNorm2d(c_out),
                           Neurons(neuron.cell())]
                c_in, hw = c_out, (hw - 1) // stride + 1
            layers += [nn.Flatten(), nn.Linear(c_in * hw * hw, 10), Neurons(neuron.cell())]
            return Network.sequential(layers, input_shape=shape), shape
    raise SystemExit(f"unknown net {name!r} (expected digits or nmnist)")


def snntorch_layers(net: Network) -> list[nn.Module]:
    """``net``'s layers with every Norse LIFBoxCell replaced by the equivalent snntorch.Leaky."""
    import snntorch
    from snntorch import surrogate

    layers = [copy.deepcopy(m) for m in net.layers.values()]
    for i, m in enumerate(layers):
        if not isinstance(m, Neurons):
            continue
        m = m.cell
        p = m.p
        a = float(m.dt * p.tau_mem_inv)  # Norse: v += a (x - v)  ==  snnTorch: v = (1 - a) v + (a x)
        prev = layers[i - 1]
        with torch.no_grad():
            prev.weight.mul_(a)
            if prev.bias is not None:
                prev.bias.mul_(a)
        layers[i] = snntorch.Leaky(beta=1 - a, threshold=float(p.v_th), reset_mechanism="zero", reset_delay=False,
                                   spike_grad=surrogate.fast_sigmoid(slope=float(p.alpha)), init_hidden=True)
    return layers


class MergedSnnTorch(nn.Module):
    """spikesmith's time-merged runner over snnTorch neurons."""

    def __init__(self, layers: list[nn.Module]):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import snntorch

        steps, batch = x.shape[:2]
        h = x
        for layer in self.layers:
            if isinstance(layer, snntorch.Leaky):
                layer.reset_mem()
                h = torch.stack([layer(h[t]) for t in range(steps)])
            else:
                y = layer(h.reshape(steps * batch, *h.shape[2:]))
                h = y.reshape(steps, batch, *y.shape[1:])
        return h


class PerStepSnnTorch(nn.Module):
    """snnTorch's idiom: the whole sequential net called once per time step."""

    def __init__(self, layers: list[nn.Module]):
        super().__init__()
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from snntorch import utils

        utils.reset(self.net)
        return torch.stack([self.net(x[t]) for t in range(x.shape[0])])


def build(variant: str, net: Network) -> nn.Module:
    if variant == "spikesmith":
        return copy.deepcopy(net)
    layers = snntorch_layers(net)
    return MergedSnnTorch(layers) if variant == "snntorch merged" else PerStepSnnTorch(layers)


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_case(*, net_name: str, variant: str, precision: str, device: str, batch: int, steps: int, iters: int,
             warmup: int, seed: int) -> dict:
    """Time ``iters`` training steps of one case; returns samples/s, ms/step and peak memory (MiB)."""
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    net, shape = make_net(net_name, seed)
    x = (torch.rand((steps, batch, *shape), generator=gen) < 0.3).float().to(dev)
    y = torch.randint(0, 10, (batch,), generator=gen).to(dev)
    base = _rss_mib()
    ref = net.to(dev).train()  # batch statistics: with fresh running stats the nets stay silent in eval
    model = build(variant, net).to(dev)
    with torch.no_grad():
        out = ref(x)
        rate = float(out.mean())  # output spikes per neuron and step: agreement of silent nets means nothing
        agree = float((model.train()(x) == out).float().mean()) if variant != "spikesmith" else float("nan")
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    use_amp = precision == "bf16"

    def step() -> None:
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_amp):
            loss = F.cross_entropy(logits_of(model(x)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    cuda = dev.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    ms = statistics.median(times) * 1e3
    peak = (torch.cuda.max_memory_allocated() / 2**20 if cuda
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base)
    return {"net": net_name, "variant": variant, "precision": precision, "device": device, "batch": batch,
            "steps": steps, "ms_per_step": ms, "samples_per_s": batch / (ms / 1e3), "peak_mib": peak,
            "agree": agree, "out_rate": rate}


def _isolated(case: dict, snnlib: str | None) -> dict:
    cmd = [sys.executable, __file__, "--case", json.dumps(case)] + (["--snnlib", snnlib] if snnlib else [])
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"case {case} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _have_snntorch(snnlib: str | None) -> bool:
    if snnlib and snnlib not in sys.path:
        sys.path.insert(0, snnlib)
    try:
        import snntorch  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    ap.add_argument("--batch", type=int, default=None, help="default 32 on CPU, 128 on CUDA")
    ap.add_argument("--steps", type=int, default=None, help="time steps T; default 8 on CPU, 16 on CUDA")
    ap.add_argument("--precision", default=None, help="comma list of fp32,bf16; default fp32 on CPU, both on CUDA")
    ap.add_argument("--nets", default="digits,nmnist")
    ap.add_argument("--iters", type=int, default=None, help="timed steps; default 5 on CPU, 20 on CUDA")
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--snnlib", default=os.environ.get("SNNLIB", "/tmp/snnlib"),
                    help="folder to add to sys.path for snnTorch if it is not installed")
    ap.add_argument("--json", default=None, help="also write the rows here")
    ap.add_argument("--case", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    have_snn = _have_snntorch(args.snnlib)
    if args.case:
        print(json.dumps(run_case(**json.loads(args.case))))
        return
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.startswith("cuda")
    batch = args.batch or (128 if cuda else 32)
    steps = args.steps or (16 if cuda else 8)
    iters = args.iters or (20 if cuda else 5)
    warmup = args.warmup if args.warmup is not None else (5 if cuda else 2)
    precisions = (args.precision or ("bf16,fp32" if cuda else "fp32")).split(",")
    variants = VARIANTS if have_snn else VARIANTS[:1]
    name = torch.cuda.get_device_name(torch.device(device)) if cuda else f"CPU ({torch.get_num_threads()} threads)"
    versions = f"torch {torch.__version__}"
    import norse

    versions += f", norse {getattr(norse, '__version__', '(version unknown)')}"
    if have_snn:
        import snntorch

        versions += f", snntorch {getattr(snntorch, '__version__', '(version unknown)')}"
    else:
        print(f"snnTorch not importable (looked in {args.snnlib}): measuring spikesmith only", file=sys.stderr)
    print(f"device: {name}; {versions}; batch {batch}, T {steps}, median of {iters} steps after {warmup} warm-up")
    rows = []
    for net_name in args.nets.split(","):
        for precision in precisions:
            for variant in variants:
                case = dict(net_name=net_name, variant=variant, precision=precision, device=device, batch=batch,
                            steps=steps, iters=iters, warmup=warmup, seed=args.seed)
                rows.append(run_case(**case) if cuda else _isolated(case, args.snnlib if have_snn else None))
                print(f"  measured {net_name} {precision} {variant}", file=sys.stderr, flush=True)
    mem = "peak MiB (CUDA alloc)" if cuda else "peak MiB (RSS growth)"
    head = f"{'net':8} {'prec':5} {'library':18} {'samples/s':>10} {'ms/step':>9} {mem:>22} {'x vs ours':>9} {'agree':>6} {'out rate':>8}"
    print(head)
    print("-" * len(head))
    for r in rows:
        ours = next(o for o in rows if o["net"] == r["net"] and o["precision"] == r["precision"]
                    and o["variant"] == "spikesmith")
        ratio = r["samples_per_s"] / ours["samples_per_s"]
        agree = "" if r["agree"] != r["agree"] else f"{r['agree']:.4f}"
        print(f"{r['net']:8} {r['precision']:5} {r['variant']:18} {r['samples_per_s']:10.0f} {r['ms_per_step']:9.2f} "
              f"{r['peak_mib']:22.1f} {ratio:9.2f} {agree:>6} {r['out_rate']:8.4f}")
    print("x vs ours: samples/s of the row / samples/s of spikesmith at the same net and precision "
          "(< 1: slower than spikesmith)")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": name, "versions": versions, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
