"""MSE-NAS training-free fitness: how well each ranker orders architectures, and what it costs.

(a) validity: Kendall tau (tau-b) between each ranker and the test accuracy after ``--epochs`` of
    training with the project trainer, over ``--genomes`` architectures sampled per seed, for each
    seed and dataset; mean and spread (sample std) over seeds. Rankers: the four RDM variants
    (label-aware with Spearman or Kendall tau-b / label-free x Hamming / 1-Pearson, one forward pass
    on a fixed probe batch), and
    the baselines firing-rate proxy (mean over spiking layers of 2p(1-p), p = the layer's firing
    rate on the probe), parameter count and synaptic operations (SOPs) per sample.
    A seed fixes the sampled architectures, the data split, the probe batch, the initial weights
    and the training order. The test split is only used for the accuracy; nothing is tuned on it.
(b) cost: seconds of one RDM-fitness evaluation (the search's single variant, and all four) vs
    one ``--cost-epochs`` training of the same candidate, in this process with the same threads.

Rows are appended to ``--out`` (JSON) as they finish, and a rerun with the same ``--out`` skips
them, so an interrupted run continues.

Usage:  python benchmarks/nas_fitness.py [--data digits,mnist5k] [--seeds 0,1,2] [--genomes 30]
            [--epochs 10] [--channels 4] [--cells 2] [--steps 4] [--out nas_fitness.json]
        python benchmarks/nas_fitness.py --cost-only [--channels 16 --cells 3 --steps 6]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spikesmith import io  # noqa: E402
from spikesmith.data import make_loaders  # noqa: E402
from spikesmith.data.probe import ProbeRef  # noqa: E402
from spikesmith.evolve.nas.backends import NasContextRef, resolve_context  # noqa: E402
from spikesmith.evolve.nas.network import build_nas_net  # noqa: E402
from spikesmith.evolve.nas.problem import evaluate_genome, network_seed  # noqa: E402
from spikesmith.evolve.nas.space import NasSpace  # noqa: E402
from spikesmith.train import TrainConfig, fit  # noqa: E402

RDM_RANKERS = ("label.hamming", "label.pearson", "label-kendall.hamming", "label-kendall.pearson", "free.hamming",
               "free.pearson")
BASELINES = ("rate 2p(1-p)", "params", "SOPs")


def train_accuracy(genome, space, *, data, channels, steps, epochs, seed, batch_size=64, lr=1e-2, max_batches=None):
    """(test accuracy, seconds) of ``genome`` trained for ``epochs`` (of at most ``max_batches``
    batches each) with the project trainer."""
    import itertools

    train, test, info = make_loaders(data, batch_size=batch_size, steps=steps, seed=seed)
    model = build_nas_net(genome, space=space, channels=channels, input_shape=info.input_shape,
                          num_classes=info.num_classes, seed=network_seed(seed, genome))

    def batches(epoch):
        train.generator.manual_seed(seed * 100_003 + epoch)
        return train if max_batches is None else itertools.islice(train, max_batches)

    t = time.perf_counter()
    res = fit(model, batches, lambda: test, TrainConfig(epochs=epochs, lr=lr, seed=seed, device="cpu"))
    return res.test_accuracy, time.perf_counter() - t


def rankers(result: dict) -> dict[str, float]:
    """Every ranker's score of one evaluation (higher = predicted better)."""
    rates = [r for r in result["rates"] if r > 0]
    out = {k: result["scores"][k] for k in RDM_RANKERS}
    out["rate 2p(1-p)"] = float(np.mean([2 * p * (1 - p) for p in rates])) if rates else 0.0
    out["params"] = float(result["params"])
    out["SOPs"] = float(result["synops"])
    return out


def sample_genomes(space: NasSpace, n: int, seed: int) -> list[tuple[int, ...]]:
    rng = np.random.default_rng(seed)
    out: list[tuple[int, ...]] = []
    while len(out) < n:
        g = space.sample(rng)
        if g not in out:
            out.append(g)
    return out


def context(args, data: str, seed: int, space: NasSpace):
    ref = NasContextRef(space=space, probe=ProbeRef(name=data, seed=seed, steps=args.steps, batch_size=args.probe),
                        channels=args.channels, seed=seed, variant="free", metric="hamming", all_variants=True)
    return resolve_context(ref)


def merge_also(args, done: dict) -> None:
    """Add the rows of the ``--also`` files (another process's share of the same grid) to ``done``."""
    for path in args.also or ():
        if Path(path).is_file():
            other = json.loads(Path(path).read_text())
            done["rows"].update({k: v for k, v in other.get("rows", {}).items() if k not in done["rows"]})


def validity(args, space: NasSpace, done: dict) -> None:
    """Evaluate and train architecture i for every seed before architecture i + 1 (a cut-short run
    still covers every seed), one dataset after another. ``--reverse`` walks the architectures from
    the last; with ``--also`` naming the other process's ``--out``, two processes share one grid."""
    for data in args.data:
        ctxs = {seed: context(args, data, seed, space) for seed in args.seeds}
        genomes = {seed: sample_genomes(space, args.genomes, seed) for seed in args.seeds}
        order = range(args.genomes - 1, -1, -1) if args.reverse else range(args.genomes)
        for i in order:
            for seed in args.seeds:
                key = f"{data}/{seed}/{i}"
                merge_also(args, done)
                if key in done["rows"]:
                    continue
                g = genomes[seed][i]
                fit_ = evaluate_genome(g, ctxs[seed])
                acc, train_s = train_accuracy(g, space, data=data, channels=args.channels, steps=args.steps,
                                              epochs=args.epochs, seed=seed, batch_size=args.batch_size,
                                              lr=args.lr, max_batches=args.max_batches)
                done["rows"][key] = {"data": data, "seed": seed, "genome": list(g), "rankers": rankers(fit_),
                                     "degenerate": fit_["degenerate"], "accuracy": acc,
                                     "fitness_seconds": fit_["seconds"], "train_seconds": train_s}
                print(f"{key} acc={acc:.3f} train={train_s:.1f}s fit={fit_['seconds'] * 1e3:.0f}ms", flush=True)
                if args.out:
                    io.write_json(args.out, done)


def add_probe(args, space: NasSpace, done: dict, probe: int) -> None:
    """Score the rows' architectures again with a probe of ``probe`` samples (the same trained
    accuracies): rankers named ``"<variant> (probe N)"``. Cheap: forward passes only."""
    saved = args.probe
    args.probe = probe
    ctxs: dict = {}
    for key, row in done["rows"].items():
        name = f"free.hamming (probe {probe})"
        if name in row["rankers"]:
            continue
        data, seed = row["data"], row["seed"]
        if (data, seed) not in ctxs:
            ctxs[(data, seed)] = context(args, data, seed, space)
        r = rankers(evaluate_genome(tuple(row["genome"]), ctxs[(data, seed)]))
        row["rankers"].update({f"{k} (probe {probe})": r[k] for k in RDM_RANKERS + ("rate 2p(1-p)",)})
    args.probe = saved


def ranker_names(done: dict) -> list[str]:
    extra = sorted({k for r in done["rows"].values() for k in r["rankers"]} - set(RDM_RANKERS + BASELINES))
    return list(RDM_RANKERS + BASELINES) + extra


def tau_table(done: dict) -> tuple[str, dict]:
    """Markdown table of Kendall tau per ranker: mean and std over seeds, per dataset."""
    from scipy.stats import kendalltau

    by: dict[tuple[str, int], list[dict]] = {}
    for r in done["rows"].values():
        by.setdefault((r["data"], r["seed"]), []).append(r)
    datasets = sorted({d for d, _ in by}, key=lambda d: (d != "digits", d))
    stats: dict = {}
    for d in datasets:
        for name in ranker_names(done):
            taus = []
            for (dd, seed), rows in sorted(by.items()):
                if dd != d or len(rows) < 3:
                    continue
                rows = [r for r in rows if name in r["rankers"]]
                if len(rows) < 3:
                    continue
                acc = np.array([r["accuracy"] for r in rows])
                s = np.array([r["rankers"][name] for r in rows])
                tau = kendalltau(s, acc).statistic
                taus.append(float(tau) if np.isfinite(tau) else 0.0)
            stats[(d, name)] = taus
    head = "| ranker | " + " | ".join(
        f"{d}: tau mean ± std ({len([1 for (dd, _) in by if dd == d])} seeds x "
        f"{min(len(v) for (dd, _), v in by.items() if dd == d)}+ archs)" for d in datasets) + " |"
    lines = [head, "|---|" + "---|" * len(datasets)]
    for name in ranker_names(done):
        cells = []
        for d in datasets:
            t = stats[(d, name)]
            cells.append(f"{statistics.mean(t):+.3f} ± {statistics.stdev(t) if len(t) > 1 else 0.0:.3f} "
                         f"({', '.join(f'{v:+.2f}' for v in t)})" if t else "n/a")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    accs = {d: [r["accuracy"] for r in done["rows"].values() if r["data"] == d] for d in datasets}
    lines.append("")
    lines.append("trained accuracy range: " + "; ".join(
        f"{d} {min(a):.3f}..{max(a):.3f} (median {statistics.median(a):.3f})" for d, a in accs.items() if a))
    return "\n".join(lines), {f"{d}/{n}": v for (d, n), v in stats.items()}


def cost(args, space: NasSpace) -> list[dict]:
    """Fitness vs training seconds of the same candidates, same process (median of 5 fitness runs)."""
    rows = []
    data = args.data[0]
    seed = args.seeds[0]
    for g in sample_genomes(space, args.cost_genomes, 1000 + seed):
        row = {"genome": list(g)}
        for label, probe in (("probe64", 64), ("probe32", 32)):
            for variants in (False, True):
                ref = NasContextRef(space=space, probe=ProbeRef(name=data, seed=seed, steps=args.steps,
                                                                batch_size=probe),
                                    channels=args.channels, seed=seed, variant="free", metric="hamming",
                                    all_variants=variants)
                ctx = resolve_context(ref)
                evaluate_genome(g, ctx)  # warm-up: allocations, first-call dispatch
                ts = []
                for _ in range(5):
                    t = time.perf_counter()
                    evaluate_genome(g, ctx)
                    ts.append(time.perf_counter() - t)
                row[f"{label}.{'all' if variants else 'one'}_s"] = statistics.median(ts)
        _, row["train_s"] = train_accuracy(g, space, data=data, channels=args.channels, steps=args.steps,
                                           epochs=args.cost_epochs, seed=seed, batch_size=args.batch_size,
                                           lr=args.lr)
        rows.append(row)
        print("cost: " + ", ".join(f"{k}={v:.4f}" for k, v in row.items() if k.endswith("_s"))
              + " -> " + ", ".join(f"{k[:-2]} x{row['train_s'] / v:.0f}" for k, v in row.items()
                                   if k.endswith("_s") and k != "train_s"), flush=True)
    return rows


def cost_table(rows: list[dict], args) -> str:
    keys = [k for k in rows[0] if k.endswith("_s") and k != "train_s"]
    lines = [f"| fitness | seconds (median over {len(rows)} candidates) | {args.cost_epochs}-epoch training / fitness |",
             "|---|---|---|"]
    for k in keys:
        lines.append(f"| {k[:-2].replace('.', ', ')} variant(s) | {statistics.median(r[k] for r in rows):.4f} | "
                     f"x{statistics.median(r['train_s'] / r[k] for r in rows):.0f} "
                     f"({', '.join('x%.0f' % (r['train_s'] / r[k]) for r in rows)}) |")
    lines.append(f"| {args.cost_epochs}-epoch training | {statistics.median(r['train_s'] for r in rows):.1f} | 1 |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=lambda s: s.split(","), default=["digits", "mnist5k"])
    ap.add_argument("--seeds", type=lambda s: [int(v) for v in s.split(",")], default=[0, 1, 2])
    ap.add_argument("--genomes", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--cells", type=int, default=2)
    ap.add_argument("--channels", type=int, default=4)
    ap.add_argument("--probe", type=int, default=64, help="probe batch of the RDM fitness")
    ap.add_argument("--batch-size", type=int, default=64, help="training batch")
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--max-batches", type=int, default=None, help="training batches per epoch (default: all)")
    ap.add_argument("--cost-genomes", type=int, default=3)
    ap.add_argument("--cost-epochs", type=int, default=10)
    ap.add_argument("--add-probe", type=int, default=None,
                    help="also score the rows' architectures with a probe of this many samples")
    ap.add_argument("--reverse", action="store_true", help="train the architectures from the last one")
    ap.add_argument("--also", type=lambda s: s.split(","), default=None,
                    help="other --out files of the same grid: their rows count as done and enter the tables")
    ap.add_argument("--table-only", action="store_true", help="print the tables of --out, evaluate nothing")
    ap.add_argument("--cost-only", action="store_true")
    ap.add_argument("--no-cost", action="store_true")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core box)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    space = NasSpace(cells=args.cells)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    done = {"settings": settings, "rows": {}}
    if args.out and Path(args.out).is_file():
        prev = json.loads(Path(args.out).read_text())
        keep = ("epochs", "steps", "cells", "channels", "probe", "batch_size", "lr", "max_batches")
        if all(prev["settings"].get(k) == settings[k] for k in keep):
            done["rows"] = prev.get("rows", {})
            done["cost"] = prev.get("cost")
    merge_also(args, done)
    if args.table_only:
        print(tau_table(done)[0])
        if done.get("cost"):
            print(cost_table(done["cost"], args))
        return done
    if not args.cost_only:
        validity(args, space, done)
        if args.add_probe:
            add_probe(args, space, done, args.add_probe)
        table, stats = tau_table(done)
        done["tau"] = stats
        print(table)
    if not args.no_cost:
        done["cost"] = cost(args, space)
        print(cost_table(done["cost"], args))
    if args.out:
        io.write_json(args.out, done)
    return done


if __name__ == "__main__":
    main()
