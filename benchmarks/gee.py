"""Benchmark GEE layers against dense layers of the same shapes: forward time, memory, generation cost.

Run:  .venv/bin/python benchmarks/gee.py [--batch 64] [--genes 64] [--reps 10] [--device cpu|cuda] [--backward]
      .venv/bin/python benchmarks/gee.py --accuracy [--data digits,mnist5k] [--seeds 0,1,2] [--genes 16]
          [--population 4 --generations 2 --final-epochs 4] [--max-batches N] [--out gee.json]
          [--target 0.5]  (the ablation: STE with H and D, without H, without D, without both, GEE trained
          plainly, the same net dense; equal network-epochs; test accuracy and generations to --target)
      .venv/bin/python benchmarks/gee.py --inheritance [--seeds 0,1,2]
          (Baldwinian vs Lamarckian STE on the tests' synthetic data: the measurement behind the default)

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


def _arms(population: int, generations: int, final_epochs: int, epochs_per_generation: int = 1) -> tuple[dict, int]:
    """The ablation arms: STE with both regularisers, without H, without D, without both; GEE trained
    plainly; the same net dense. Equal budget: every arm trains the same number of network-epochs, the
    STE runs' total (population x (generations + 1) x epochs per generation + final epochs, Baldwinian
    adding the best's epochs per generation); plain and dense spend them on one network."""
    from spikesmith.evolve.gee.schedules import LinearDecay

    budget = population * (generations + 1) * epochs_per_generation + final_epochs + epochs_per_generation
    evo = dict(encoded=True, population=population, generations=generations, final_epochs=final_epochs)
    no_h, no_d = dict(lambda_s=LinearDecay(start=0.0)), dict(lambda_t=LinearDecay(start=0.0))
    single = dict(population=1, generations=0, final_epochs=budget - 2 * epochs_per_generation)
    return {
        "STE (H and D)": evo | dict(config={}),
        "STE without H": evo | dict(config=no_h),
        "STE without D": evo | dict(config=no_d),
        "STE without H, D": evo | dict(config=no_h | no_d),
        "GEE trained plainly": single | dict(encoded=True, config=no_h | no_d),
        "dense": single | dict(encoded=False, config=no_h | no_d),
    }, budget


def generations_to(history: list[dict], target: float) -> int | None:
    """Return the first generation whose best held-out accuracy reaches ``target`` (None: never)."""
    return next((h["generation"] for h in history if h["val_accuracy"] >= target), None)


def accuracy_comparison(*, datasets: list[str], seeds: list[int], genes: int, population: int, generations: int,
                        final_epochs: int, steps: int, max_batches: int | None, device: str | None,
                        target: float = 0.5, out: Path | None = None) -> str:
    """Run every arm of :func:`_arms` per dataset and seed; return a Markdown table of test accuracy and
    generations to reach ``target`` held-out accuracy, mean ± std over seeds. Rows are appended to
    ``out`` (JSON) as they finish and reused."""
    import json
    from dataclasses import replace

    from spikesmith import io
    from spikesmith.evolve.gee import SteOptions, run_gee_evolution

    arms, budget = _arms(population, generations, final_epochs)
    settings = dict(genes=genes, population=population, generations=generations, final_epochs=final_epochs,
                    steps=steps, max_batches=max_batches, target=target)
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
                cfg = replace(SteOptions(), max_batches=max_batches, **kw.pop("config"))
                arch = "digits"
                r = run_gee_evolution(data=data, arch=arch, genes=genes, steps=steps, seed=seed, device=device,
                                      config=cfg, **kw)
                gens = generations_to(list(r.history), target) if kw["population"] > 1 else None
                done["rows"][key] = {"data": data, "seed": seed, "arm": name, "test_accuracy": r.test_accuracy,
                                     "val_accuracy": r.val_accuracy, "params": r.params, "generations_to": gens,
                                     "best_val_per_generation": [h["val_accuracy"] for h in r.history],
                                     "dense_params": r.dense_params, "seconds": r.seconds}
                print(f"{key}: test {r.test_accuracy:.3f}, generations to {target}: {gens} ({r.seconds:.0f} s)",
                      flush=True)
                if out is not None:
                    io.write_json(out, done)
    lines = [f"T={steps}, g={genes}; STE runs: population {population} x {generations + 1} generations + "
             f"{final_epochs} final epochs (Baldwinian); plain GEE and dense: one network, the same {budget} "
             f"network-epochs" + (f"; at most {max_batches} batches of 64 per epoch" if max_batches else ""), "",
             f"| dataset | run | parameters | test accuracy mean ± std | per seed | generations to {target:g} "
             "held-out (per seed; - never) |", "|---|---|---|---|---|---|"]
    for data in datasets:
        for name in arms:
            rows = [r for r in done["rows"].values() if r["data"] == data and r["arm"] == name]
            if not rows:
                continue
            acc = [r["test_accuracy"] for r in rows]
            sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
            gens = ([("-" if r["generations_to"] is None else str(r["generations_to"])) for r in rows]
                    if name.startswith("STE") else ["n/a"])
            lines.append(f"| {data} | {name} | {rows[0]['params']:,} | {statistics.mean(acc):.3f} ± {sd:.3f} "
                         f"({len(acc)} seeds) | {', '.join(f'{a:.3f}' for a in acc)} | {', '.join(gens)} |")
    return "\n".join(lines)


def inheritance_comparison(*, seeds: list[int]) -> str:
    """Baldwinian vs Lamarckian STE on the tests' synthetic 8x8 data (g=8, T=2, population 4, 3
    generations after the initial one, 2 final epochs, batch 16, CPU); returns a Markdown table."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "evolve" / "gee"))
    from gee_data import synthetic_data

    from spikesmith.evolve.gee import SteOptions, run_gee_evolution

    data = synthetic_data(n_train=320, n_val=64, n_test=160)
    lines = ["| seed | Baldwinian test acc. | Lamarckian test acc. | best held-out acc. per generation (B / L) |",
             "|---|---|---|---|"]
    for seed in seeds:
        rs = {}
        for inh in ("baldwinian", "lamarckian"):
            cfg = SteOptions(batch_size=16, tournament=2, elite=1, inheritance=inh)
            rs[inh] = run_gee_evolution(data=data, population=4, generations=3, final_epochs=2, config=cfg,
                                        device="cpu", arch="digits", genes=8, steps=2, seed=seed)
        per = " / ".join(" ".join(f"{h['val_accuracy']:.2f}" for h in rs[k].history) for k in rs)
        lines.append(f"| {seed} | {rs['baldwinian'].test_accuracy:.3f} | {rs['lamarckian'].test_accuracy:.3f} "
                     f"| {per} |")
        print(lines[-1], flush=True)
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
    ap.add_argument("--target", type=float, default=0.5, help="held-out accuracy for generations-to-target")
    ap.add_argument("--out", type=Path, default=None, help="JSON of the accuracy rows (reused when rerun)")
    ap.add_argument("--inheritance", action="store_true",
                    help="instead: Baldwinian vs Lamarckian STE on synthetic data, per --seeds")
    args = ap.parse_args(argv)
    if args.inheritance:
        print(inheritance_comparison(seeds=[int(s) for s in args.seeds.split(",")]))
        return
    if args.accuracy or args.digits:
        print(accuracy_comparison(datasets=["digits"] if args.digits else args.data.split(","),
                                  seeds=[int(s) for s in args.seeds.split(",")], genes=args.genes or 16,
                                  population=args.population, generations=args.generations,
                                  final_epochs=args.final_epochs, steps=args.steps, max_batches=args.max_batches,
                                  device=args.device, target=args.target, out=args.out))
        return
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    genes = args.genes or 64
    rows = bench(batch=args.batch, genes=genes, reps=args.reps, device=device, backward=args.backward)
    print(render(rows, genes=genes, batch=args.batch, device=device))


if __name__ == "__main__":
    main()
