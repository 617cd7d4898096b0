"""Training throughput, peak memory and agreement of one SNN in spikesmith, snnTorch and SpikingJelly.

Run:  python benchmarks/train_throughput.py [--device cpu|cuda] [--precision fp32,bf16] [--nets digits,nmnist]
          [--batch B] [--steps T] [--iters N] [--threads N] [--json out.json]

Networks: ``digits`` is the default conv SNN of ``spikesmith train`` (the conv family, c1=12, c2=32 on
1x8x8); ``nmnist`` is an N-MNIST-shaped 3-conv SNN on 2x34x34 frames (conv 32 s1, 64 s2, 64 s2, each
BN + LIF, then Linear -> 10 LIF). Inputs are Bernoulli(0.3) spike frames. Before anything is timed
every readout Linear is scaled so its drive has unit standard deviation on the batch (batch norm does
that for the conv layers), so every layer and the output spike; the firing rate of each layer is
printed, and the agreement columns say "silent" instead of a number when the output does not spike.

One training step is what spikesmith.train.fit does: forward (autocast for bf16 rows), cross-entropy on
the spike counts, backward, AdamW step. Variants, built from the same initial weights:
  spikesmith           Network.forward with its automatic schedule (fused LIF, chunked CPU convs)
  snntorch merged      stateless layers on all T steps at once, snntorch.Leaky stepped per time step
  snntorch per-step    snnTorch's idiom: the whole nn.Sequential called once per time step
  spikingjelly         SpikingJelly multi-step mode: SeqToANNContainer layers, LIFNode(step_mode='m')
                       (its own CPU kernels; CUDA kernels on CUDA); optional: skipped if not importable
  with --schedules, spikesmith under fixed schedules, to justify the automatic one:
  ours: reference      stateless layers on all T steps at once, Norse's LIFBoxCell stepped (the old runner)
  ours: all steps      all T steps at once through every conv, fused LIF
  ours: 1 step/conv    one time step per conv call (B samples), fused LIF
  spikesmith compiled  with --compiled: the same schedule, the fused LIF update through torch.compile
                       (compiled in the warm-up step, not timed)
The neurons are the same neuron: snnTorch Leaky(beta = 1 - dt/tau, reset to zero without delay,
fast_sigmoid(slope=1), with dt/tau folded into the preceding layer) and SpikingJelly
LIFNode(tau, hard reset to 0, SuperSpike(alpha=1)) both reproduce Norse's LIFBoxCell, whose SuperSpike
surrogate is 1 / (|v - v_th| + 1)^2.

Agreement (columns ``spikes equal`` and ``grad diff``): with batch-norm statistics set from the batch
and every model in eval mode (so the per-step idiom normalises like the others), the fraction of
output spikes equal to spikesmith's, and ||g - g_ours|| / ||g_ours|| for g the gradient of the loss
with respect to the first convolution's weight.

Timing: all variants of a net run in this one process, one step each in turn (round robin), so load
from other processes hits them alike; the median step is reported and ``x vs ours`` is the ratio.
Peak memory: each variant takes one warm-up step, then its peak over three more steps is reported
above the memory in use just before its model was built: on CUDA the allocator's peak; on CPU, in a
child process per variant, the peak resident set size (VmHWM, reset after the warm-up step).
"one copy of all activations" is one copy of every layer's output over all T x B samples (fp32): what backpropagation
through time keeps, several times over.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
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

from spikesmith import io  # noqa: E402
from spikesmith.nn import (REFERENCE, Network, NeuronParams, Neurons, Schedule, auto_schedule,  # noqa: E402
                           build as build_net)
from spikesmith.nn.families.conv import ConvSpec  # noqa: E402
from spikesmith.train import logits_of  # noqa: E402

VARIANTS = ("spikesmith", "snntorch merged", "snntorch per-step", "spikingjelly")
COMPILED = "spikesmith compiled"
SCHEDULES = {"ours: reference": REFERENCE, "ours: all steps": Schedule(conv_steps=None),
             "ours: 1 step/conv": Schedule(conv_steps=1)}


def make_net(name: str, seed: int) -> tuple[Network, tuple[int, ...]]:
    """The spikesmith network ``name`` and its input shape (C, H, W)."""
    if name == "digits":
        shape = (1, 8, 8)
        return build_net(ConvSpec(c1=12, c2=32, hidden=0, tau_steps=2.0, v_th=0.5, input_shape=shape,
                                  num_classes=10), seed=seed), shape
    if name == "nmnist":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            shape, neuron, layers, c_in, hw = (2, 34, 34), NeuronParams(tau_steps=2.0, v_th=0.5), [], 2, 34
            for c_out, stride in ((32, 1), (64, 2), (64, 2)):
                layers += [nn.Conv2d(c_in, c_out, 3, padding=1, stride=stride, bias=False), nn.BatchNorm2d(c_out),
                           Neurons(neuron.cell())]
                c_in, hw = c_out, (hw - 1) // stride + 1
            layers += [nn.Flatten(), nn.Linear(c_in * hw * hw, 10), Neurons(neuron.cell())]
            return Network.sequential(layers, input_shape=shape), shape
    raise SystemExit(f"unknown net {name!r} (expected digits or nmnist)")


def prepare(net_name: str, *, seed: int, batch: int, steps: int):
    """(network driven to spike, x (T, B, C, H, W), labels, per-layer firing rates, activation MiB)."""
    net, shape = make_net(net_name, seed)
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand((steps, batch, *shape), generator=gen) < 0.3).float()
    y = torch.randint(0, 10, (batch,), generator=gen)
    net.train()
    names = [name for name, _ in net.graph]
    with torch.no_grad():
        for i, name in enumerate(names[:-1]):
            layer = net.layers[name]
            if isinstance(layer, nn.Linear) and isinstance(net.layers[names[i + 1]], Neurons):
                drive = _node_output(net, x, name)
                scale = 1.0 / float(drive.std().clamp_min(1e-6))
                layer.weight.mul_(scale)
                layer.bias.mul_(scale)
        for m in net.modules():  # running statistics = this batch's, for the eval-mode agreement check
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
                m.momentum = None
        out, recorded = net(x, record=True)
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.momentum = 0.1
        acts = _activation_mib(net, x)
    rates = {name: float(z.mean()) for name, z in recorded.items()}
    return net, x, y, rates, acts


def _node_output(net: Network, x: torch.Tensor, node: str) -> torch.Tensor:
    sub = Network([(n, net.layers[n], i) for n, i in net.graph[:[n for n, _ in net.graph].index(node) + 1]],
                  input_shape=net.input_shape)
    return sub(x)


def _activation_mib(net: Network, x: torch.Tensor) -> float:
    sizes = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: sizes.append(out.numel())) for m in net.layers.values()]
    try:
        net(x)
    finally:
        for h in hooks:
            h.remove()
    return sum(sizes) * 4 / 2**20


def snntorch_layers(net: Network) -> list[nn.Module]:
    """``net``'s layers with every Norse LIFBoxCell replaced by the equivalent snntorch.Leaky."""
    import snntorch
    from snntorch import surrogate

    layers = [copy.deepcopy(m) for m in net.layers.values()]
    for i, m in enumerate(layers):
        if not isinstance(m, Neurons):
            continue
        p = m.cell.p
        a = float(m.cell.dt * p.tau_mem_inv)  # Norse: v += a (x - v)  ==  snnTorch: v = (1 - a) v + (a x)
        prev = layers[i - 1]
        with torch.no_grad():
            prev.weight.mul_(a)
            if prev.bias is not None:
                prev.bias.mul_(a)
        layers[i] = snntorch.Leaky(beta=1 - a, threshold=float(p.v_th), reset_mechanism="zero", reset_delay=False,
                                   spike_grad=surrogate.fast_sigmoid(slope=1.0), init_hidden=True)
    return layers


class MergedSnnTorch(nn.Module):
    """Stateless layers on all T steps at once over snnTorch neurons stepped per time step."""

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


class SpikingJellyNet(nn.Module):
    """SpikingJelly's multi-step idiom: runs of stateless layers in SeqToANNContainer, LIFNode(step_mode='m')."""

    def __init__(self, net: Network):
        super().__init__()
        from spikingjelly.activation_based import layer, neuron, surrogate

        mods, run = [], []
        for m in net.layers.values():
            if isinstance(m, Neurons):
                if run:
                    mods.append(layer.SeqToANNContainer(*run))
                    run = []
                p = m.cell.p
                tau = 1.0 / float(m.cell.dt * p.tau_mem_inv)
                mods.append(neuron.LIFNode(tau=tau, decay_input=True, v_threshold=float(p.v_th),
                                           v_reset=float(p.v_reset), surrogate_function=surrogate.SuperSpike(alpha=1.0),
                                           detach_reset=False, step_mode="m"))
            else:
                run.append(copy.deepcopy(m))
        if run:
            mods.append(layer.SeqToANNContainer(*run))
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from spikingjelly.activation_based import functional

        functional.reset_net(self.net)
        return self.net(x)


class Scheduled(nn.Module):
    """The spikesmith network under a fixed schedule (None: the automatic one plus the compiled LIF update)."""

    def __init__(self, net: Network, schedule: Schedule | None):
        super().__init__()
        self.net = copy.deepcopy(net)
        self.schedule = schedule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, schedule=self.schedule or dataclasses.replace(auto_schedule(x), compiled=True))


def available(variant: str) -> bool:
    """True when the library ``variant`` needs is importable."""
    try:
        if variant.startswith("snntorch"):
            import snntorch  # noqa: F401
        elif variant == "spikingjelly":
            from spikingjelly.activation_based import layer, neuron  # noqa: F401
    except ImportError:
        return False
    return True


def build(variant: str, net: Network) -> nn.Module:
    if variant == "spikesmith":
        return copy.deepcopy(net)
    if variant == "spikingjelly":
        return SpikingJellyNet(net)
    if variant == COMPILED:
        return Scheduled(net, None)
    if variant in SCHEDULES:
        return Scheduled(net, SCHEDULES[variant])
    layers = snntorch_layers(net)
    return MergedSnnTorch(layers) if variant == "snntorch merged" else PerStepSnnTorch(layers)


def first_conv(model: nn.Module) -> nn.Conv2d:
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))


def agreement(models: dict[str, nn.Module], x: torch.Tensor, y: torch.Tensor) -> dict[str, dict]:
    """Per variant, in eval mode: output rate, fraction of output spikes equal to spikesmith's, and the
    relative difference of the loss gradient on the first conv weight."""
    res = {}
    for name, model in models.items():
        model.eval()
        model.zero_grad(set_to_none=True)
        out = model(x)
        F.cross_entropy(logits_of(out), y).backward()
        res[name] = {"out": out.detach(), "grad": first_conv(model).weight.grad.detach().clone()}
        model.zero_grad(set_to_none=True)
        model.train()
    ref = res["spikesmith"]
    return {name: {"out_rate": float(r["out"].mean()),
                   "spikes_equal": float((r["out"] == ref["out"]).float().mean()),
                   "grad_diff": float((r["grad"] - ref["grad"]).norm() / ref["grad"].norm().clamp_min(1e-30))}
            for name, r in res.items()}


def train_step(model, opt, x, y, dev, use_amp) -> None:
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_amp):
        loss = F.cross_entropy(logits_of(model(x)), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _reset_peak_rss() -> bool:
    """Reset this process's peak RSS (Linux: VmHWM); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_case(*, net_name: str, variant: str, precision: str, device: str, batch: int, steps: int, seed: int,
                threads: int | None, iters: int = 3) -> float:
    """Peak MiB of ``iters`` training steps of one variant after one warm-up step, above the memory in
    use before the model was built (CUDA allocator peak; CPU: peak RSS growth)."""
    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    net, x, y, _, _ = prepare(net_name, seed=seed, batch=batch, steps=steps)
    x, y = x.to(dev), y.to(dev)
    cuda = dev.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        import gc

        gc.collect()
        base = _rss_mib()
    model = build(variant, net).to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    train_step(model, opt, x, y, dev, precision == "bf16")  # warm-up (and compilation), not counted
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    elif not _reset_peak_rss():
        raise RuntimeError("cannot reset the peak RSS (/proc/self/clear_refs): no CPU memory figure")
    for _ in range(iters):
        train_step(model, opt, x, y, dev, precision == "bf16")
    if cuda:
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    return _peak_rss_mib() - base


def _memory_isolated(case: dict) -> float:
    cmd = [sys.executable, __file__, "--memory-case", json.dumps(case)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory case {case} failed:\n{done.stderr[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def measure_net(*, net_name: str, variants: list[str], precision: str, device: str, batch: int, steps: int,
                iters: int, warmup: int, seed: int, threads: int | None) -> dict:
    """Firing rates, agreement, samples/s (round robin) and peak memory of every variant on one net."""
    dev = torch.device(device)
    net, x, y, rates, acts = prepare(net_name, seed=seed, batch=batch, steps=steps)
    x, y = x.to(dev), y.to(dev)
    models = {v: build(v, net).to(dev) for v in variants}
    agree = agreement(models, x, y)
    opts = {v: torch.optim.AdamW(m.parameters(), lr=1e-3) for v, m in models.items()}
    use_amp = precision == "bf16"
    cuda = dev.type == "cuda"
    times: dict[str, list[float]] = {v: [] for v in variants}
    for i in range(warmup + iters):
        for v in variants:
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            train_step(models[v], opts[v], x, y, dev, use_amp)
            if cuda:
                torch.cuda.synchronize()
            if i >= warmup:
                times[v].append(time.perf_counter() - t0)
    del models, opts
    rows = []
    for v in variants:
        case = dict(net_name=net_name, variant=v, precision=precision, device=device, batch=batch, steps=steps,
                    seed=seed, threads=threads)
        peak = memory_case(**case) if cuda else _memory_isolated(case)
        ms = statistics.median(times[v]) * 1e3
        rows.append({"net": net_name, "variant": v, "precision": precision, "device": device, "batch": batch,
                     "steps": steps, "ms_per_step": ms, "samples_per_s": batch / (ms / 1e3), "peak_mib": peak,
                     **agree[v]})
    return {"net": net_name, "precision": precision, "layer_rates": rates, "activation_mib": acts, "rows": rows}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    ap.add_argument("--batch", type=int, default=None, help="default 32 on CPU, 128 on CUDA")
    ap.add_argument("--steps", type=int, default=None, help="time steps T; default 8 on CPU, 16 on CUDA")
    ap.add_argument("--precision", default=None, help="comma list of fp32,bf16; default fp32 on CPU, both on CUDA")
    ap.add_argument("--nets", default="digits,nmnist")
    ap.add_argument("--iters", type=int, default=None, help="timed steps per variant; default 5 on CPU, 20 on CUDA")
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--schedules", action="store_true", help="add rows: spikesmith under fixed schedules")
    ap.add_argument("--compiled", action="store_true", help="add a row: spikesmith with torch.compile'd neurons")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--memory-case", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.memory_case:
        print(memory_case(**json.loads(args.memory_case)))
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.startswith("cuda")
    batch = args.batch or (128 if cuda else 32)
    steps = args.steps or (16 if cuda else 8)
    iters = args.iters or (20 if cuda else 5)
    warmup = args.warmup if args.warmup is not None else (3 if cuda else 1)
    precisions = (args.precision or ("bf16,fp32" if cuda else "fp32")).split(",")
    variants = ([v for v in VARIANTS if available(v)] + ([COMPILED] if args.compiled else [])
                + (list(SCHEDULES) if args.schedules else []))
    missing = [v for v in VARIANTS if v not in variants]
    name = torch.cuda.get_device_name(torch.device(device)) if cuda else f"CPU ({torch.get_num_threads()} threads)"
    import norse

    versions = f"torch {torch.__version__}, norse {getattr(norse, '__version__', '?')}"
    for lib in ("snntorch", "spikingjelly"):
        try:
            from importlib.metadata import version

            versions += f", {lib} {version(lib)}"
        except Exception:  # noqa: BLE001 - a missing library only drops its rows
            pass
    print(f"device: {name}; {versions}; batch {batch}, T {steps}, median of {iters} round-robin steps after "
          f"{warmup} warm-up" + (f"; not importable: {', '.join(missing)}" if missing else ""))
    results = []
    for net_name in args.nets.split(","):
        for precision in precisions:
            res = measure_net(net_name=net_name, variants=variants, precision=precision, device=device, batch=batch,
                              steps=steps, iters=iters, warmup=warmup, seed=args.seed, threads=args.threads)
            results.append(res)
            rates = ", ".join(f"{k} {v:.3f}" for k, v in res["layer_rates"].items())
            print(f"{net_name} {precision}: firing rate per LIF layer (spikesmith, training mode): {rates}; "
                  f"one copy of all activations: {res['activation_mib']:.1f} MiB", flush=True)
    mem = "peak MiB (CUDA alloc)" if cuda else "peak MiB (RSS growth)"
    head = (f"{'net':7} {'prec':5} {'library':19} {'samples/s':>10} {'ms/step':>9} {'x vs ours':>9} {mem:>22} "
            f"{'out rate':>8} {'spikes equal':>12} {'grad diff':>10}")
    print(head)
    print("-" * len(head))
    for res in results:
        silent = min(res["layer_rates"].values()) <= 0
        ours = next(r for r in res["rows"] if r["variant"] == "spikesmith")
        for r in res["rows"]:
            ratio = r["samples_per_s"] / ours["samples_per_s"]
            equal = "silent" if silent else f"{r['spikes_equal']:.4f}"
            grad = "silent" if silent else f"{r['grad_diff']:.2e}"
            print(f"{r['net']:7} {r['precision']:5} {r['variant']:19} {r['samples_per_s']:10.0f} "
                  f"{r['ms_per_step']:9.2f} {ratio:9.2f} {r['peak_mib']:22.1f} {r['out_rate']:8.4f} {equal:>12} "
                  f"{grad:>10}")
    print("x vs ours: samples/s of the row / samples/s of spikesmith (same net, precision, run); spikes equal, "
          "grad diff: eval mode, against spikesmith")
    if any(min(res["layer_rates"].values()) <= 0 for res in results):
        print("a layer is silent: agreement not reported", file=sys.stderr)
    if args.json:
        io.write_json(args.json, {"schema_version": 1, "device": name, "versions": versions, "batch": batch,
                                  "steps": steps, "iters": iters, "results": results})


if __name__ == "__main__":
    main()
