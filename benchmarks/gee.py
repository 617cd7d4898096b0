"""Benchmark GEE layers against dense layers of the same shapes: forward time, memory, generation cost.

Run:  .venv/bin/python benchmarks/gee.py [--batch 64] [--genes 64] [--reps 10] [--device cpu|cuda] [--backward]
      .venv/bin/python benchmarks/gee.py --accuracy [--data digits,mnist5k] [--seeds 0,1,2] [--genes 16]
          [--population 4 --generations 2 --final-epochs 4] [--max-batches N] [--out gee.json]
          (accuracy: GEE-STE vs GEE evolved without the STE regularisers vs the same net dense, same epochs)

For each layer shape (ResNet-18-like convs and a linear layer) it times, at the given batch:
dense forward (torch.nn.Conv2d / Linear), GEE forward (weight generated + applied), the weight
generation alone, and with --backward forward+backward. Memory: stored parameters (dense W vs
X_pre + X_post; the shared G is counted once, in the total), the transient generated weight, and
on CUDA the measured peak allocation of one forward. Ratios are GEE / dense (target <= 1.2x).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spikesmith.nn.gee import GeneConv2d, GeneInteraction, GeneLinear  # noqa: E402

SHAPES = [  # (name, kind, c_in, c_out, k, spatial)
    ("conv 64->128 16x16", "conv", 64, 128, 3, 16),
    ("conv 128->128 16x16", "conv", 128, 128, 3, 16),
    ("conv 256->256 8x8", "conv", 256, 256, 3, 8),
    ("conv 512->512 4x4", "conv", 512, 512, 3, 4),
    ("linear 512->512", "linear", 512, 512, 0, 0),
]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, device, reps: int) -> float:
    """Return the median seconds of ``fn()`` over ``reps`` runs after two warm-ups."""
    for _ in range(2):
        fn()
    _sync(device)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _peak(fn, device) -> int | None:
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    fn()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - base


def bench(*, batch: int, genes: int, reps: int, device: torch.device, backward: bool) -> list[dict]:
    """Return one dict of timings and memory per layer shape."""
    gen = torch.Generator().manual_seed(0)
    gene = GeneInteraction(genes, generator=gen).to(device)
    rows = []
    for name, kind, c_in, c_out, k, size in SHAPES:
        if kind == "conv":
            dense = nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False)
            enc = GeneConv2d(c_in, c_out, k, padding=k // 2, gene=gene, generator=gen)
            x = torch.rand(batch, c_in, size, size, generator=gen)
        else:
            dense = nn.Linear(c_in, c_out, bias=False)
            enc = GeneLinear(c_in, c_out, gene=gene, bias=False, generator=gen)
            x = torch.rand(batch, c_in, generator=gen)
        dense, enc, x = dense.to(device), enc.to(device), x.to(device)
        row = {"layer": name}
        with torch.no_grad():
            row["dense_fwd_ms"] = 1e3 * _time(lambda: dense(x), device, reps)
            row["gee_fwd_ms"] = 1e3 * _time(lambda: enc(x), device, reps)
            row["gen_ms"] = 1e3 * _time(lambda: enc.weight, device, reps)
            row["dense_peak"] = _peak(lambda: dense(x), device)
            row["gee_peak"] = _peak(lambda: enc(x), device)
        if backward:
            def step(m):
                m.zero_grad(set_to_none=True)
                m(x).sum().backward()
            row["dense_fwdbwd_ms"] = 1e3 * _time(lambda: step(dense), device, reps)
            row["gee_fwdbwd_ms"] = 1e3 * _time(lambda: step(enc), device, reps)
        row["dense_param_bytes"] = dense.weight.numel() * 4
        row["gee_param_bytes"] = (enc.x_pre.numel() + enc.x_post.numel()) * 4
        row["generated_weight_bytes"] = dense.weight.numel() * 4
        rows.append(row)
    return rows


def render(rows: list[dict], *, genes: int, batch: int, device: torch.device) -> str:
    """Return the rows as a side-by-side table with GEE/dense ratios."""
    kib = lambda b: f"{b / 1024:,.0f}K"  # noqa: E731
    lines = [f"GEE vs dense, g={genes}, batch={batch}, device={device}, torch {torch.__version__}"]
    head = (f"{'layer':<21} {'dense ms':>9} {'gee ms':>9} {'ratio':>6} {'gen ms':>8} {'gen %':>6} "
            f"{'dense W':>9} {'X':>8} {'W/X':>6}")
    if "dense_fwdbwd_ms" in rows[0]:
        head += f" {'f+b dense':>10} {'f+b gee':>9} {'ratio':>6}"
    if rows[0]["dense_peak"] is not None:
        head += f" {'peak dense':>11} {'peak gee':>10} {'ratio':>6}"
    lines.append(head)
    for r in rows:
        line = (f"{r['layer']:<21} {r['dense_fwd_ms']:>9.3f} {r['gee_fwd_ms']:>9.3f} "
                f"{r['gee_fwd_ms'] / r['dense_fwd_ms']:>5.2f}x {r['gen_ms']:>8.3f} "
                f"{100 * r['gen_ms'] / r['gee_fwd_ms']:>5.1f}% {kib(r['dense_param_bytes']):>9} "
                f"{kib(r['gee_param_bytes']):>8} {r['dense_param_bytes'] / r['gee_param_bytes']:>5.1f}x")
        if "dense_fwdbwd_ms" in r:
            line += (f" {r['dense_fwdbwd_ms']:>10.3f} {r['gee_fwdbwd_ms']:>9.3f} "
                     f"{r['gee_fwdbwd_ms'] / r['dense_fwdbwd_ms']:>5.2f}x")
        if r["dense_peak"] is not None:
            line += f" {kib(r['dense_peak']):>11} {kib(r['gee_peak']):>10} {r['gee_peak'] / r['dense_peak']:>5.2f}x"
        lines.append(line)
    d = sum(r["dense_fwd_ms"] for r in rows)
    e = sum(r["gee_fwd_ms"] for r in rows)
    lines.append(f"{'total':<21} {d:>9.3f} {e:>9.3f} {e / d:>5.2f}x   (G {genes}x{genes} = "
                 f"{kib(genes * genes * 4)} stored once per network)")
    return "\n".join(lines)


def _arms(population: int, generations: int, final_epochs: int, epochs_per_generation: int = 1) -> dict:
    """The compared runs: GEE-STE with and without its regularisers, and the same net dense, equal epochs.

    Budget: every arm trains for the same number of network-epochs, the STE run's total
    (population x generations x epochs per generation + final epochs); the dense baseline spends
    them on one network.
    """
    from spikesmith.evolve.gee.schedules import LinearDecay

    budget = population * generations * epochs_per_generation + final_epochs
    off = dict(lambda_s=LinearDecay(start=0.0), lambda_t=LinearDecay(start=0.0))
    return {
        "gee-ste": dict(encoded=True, population=population, generations=generations, final_epochs=final_epochs,
                        config={}),
        "gee-evo (no STE reg.)": dict(encoded=True, population=population, generations=generations,
                                      final_epochs=final_epochs, config=off),
        "dense": dict(encoded=False, population=1, generations=0, final_epochs=budget, config={}),
    }, budget


def accuracy_comparison(*, datasets: list[str], seeds: list[int], genes: int, population: int, generations: int,
                        final_epochs: int, steps: int, max_batches: int | None, device: str | None,
                        out: Path | None = None) -> str:
    """Run every arm of :func:`_arms` per dataset and seed; return a Markdown table of test accuracy and
    parameters, mean ± std over seeds. Rows are appended to ``out`` (JSON) as they finish and reused."""
    import json
    from dataclasses import replace

    from spikesmith import io
    from spikesmith.evolve.gee import run_gee_evolution
    from spikesmith.evolve.gee.ste import SteConfig

    arms, budget = _arms(population, generations, final_epochs)
    settings = dict(genes=genes, population=population, generations=generations, final_epochs=final_epochs,
                    steps=steps, max_batches=max_batches)
    done = {"settings": settings, "rows": {}}
    if out is not None and out.is_file():
        prev = json.loads(out.read_text())
        if prev.get("settings") == settings:
            done = prev
    for data in datasets:
        for seed in seeds:  # seed outer: a cut-short run still compares every arm
            for name, kw in arms.items():
                key = f"{data}/{seed}/{name}"
                if key in done["rows"]:
                    continue
                kw = dict(kw)
                cfg = replace(SteConfig(), max_batches=max_batches, **kw.pop("config"))
                r = run_gee_evolution(data=data, arch="digits", genes=genes, steps=steps, seed=seed, device=device,
                                      config=cfg, **kw)
                done["rows"][key] = {"data": data, "seed": seed, "arm": name, "test_accuracy": r.test_accuracy,
                                     "val_accuracy": r.val_accuracy, "params": r.params,
                                     "dense_params": r.dense_params, "seconds": r.seconds}
                print(f"{key}: test {r.test_accuracy:.3f} params {r.params:,} ({r.seconds:.0f} s)", flush=True)
                if out is not None:
                    io.write_json(out, done)
    lines = [f"T={steps}, g={genes}; GEE runs: population {population} x {generations} generations + "
             f"{final_epochs} final epochs; dense: {budget} epochs (the same {budget} network-epochs)"
             + (f"; at most {max_batches} batches of 64 per epoch" if max_batches else ""), "",
             "| dataset | run | parameters | test accuracy mean ± std | per seed |", "|---|---|---|---|---|"]
    for data in datasets:
        for name in arms:
            rows = [r for r in done["rows"].values() if r["data"] == data and r["arm"] == name]
            if not rows:
                continue
            acc = [r["test_accuracy"] for r in rows]
            sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
            lines.append(f"| {data} | {name} | {rows[0]['params']:,} | {statistics.mean(acc):.3f} ± {sd:.3f} "
                         f"({len(acc)} seeds) | {', '.join(f'{a:.3f}' for a in acc)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run the benchmark, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--genes", type=int, default=None, help="default 64 (layers) or 16 (--digits)")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--device", default=None)
    ap.add_argument("--backward", action="store_true")
    ap.add_argument("--accuracy", action="store_true",
                    help="instead: GEE-STE vs GEE evolved without the STE regularisers vs dense, same budget")
    ap.add_argument("--digits", action="store_true", help="--accuracy on digits only")
    ap.add_argument("--data", default="digits,mnist5k")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--population", type=int, default=4)
    ap.add_argument("--generations", type=int, default=2)
    ap.add_argument("--final-epochs", type=int, default=4)
    ap.add_argument("--max-batches", type=int, default=None, help="training batches per epoch (default: all)")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--out", type=Path, default=None, help="JSON of the accuracy rows (reused when rerun)")
    args = ap.parse_args(argv)
    if args.accuracy or args.digits:
        print(accuracy_comparison(datasets=["digits"] if args.digits else args.data.split(","),
                                  seeds=[int(s) for s in args.seeds.split(",")], genes=args.genes or 16,
                                  population=args.population, generations=args.generations,
                                  final_epochs=args.final_epochs, steps=args.steps, max_batches=args.max_batches,
                                  device=args.device, out=args.out))
        return
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    genes = args.genes or 64
    rows = bench(batch=args.batch, genes=genes, reps=args.reps, device=device, backward=args.backward)
    print(render(rows, genes=genes, batch=args.batch, device=device))


if __name__ == "__main__":
    main()
