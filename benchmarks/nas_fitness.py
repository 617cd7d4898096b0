"""MSE-NAS training-free fitness: its cost, and how well it ranks architectures (spec section 3).

(a) cost: seconds of one RDM-fitness evaluation vs a 10-epoch training of the same candidate
    (``--cost-genomes`` candidates, same process, same threads);
(b) validity: Kendall tau between each fitness variant (label-aware / label-free x Hamming /
    1-Pearson, all from one forward pass) and the test accuracy after a short training
    (``--epochs``) over ``--genomes`` sampled architectures on the embedded digits.

Usage:  python benchmarks/nas_fitness.py [--genomes 24] [--epochs 3] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spikesmith import io  # noqa: E402
from spikesmith.data import make_loaders  # noqa: E402
from spikesmith.evolve.nas.network import build_nas_net  # noqa: E402
from spikesmith.evolve.nas.problem import EvalContext, evaluate_genome, network_seed  # noqa: E402
from spikesmith.evolve.nas.space import NasSpace  # noqa: E402
from spikesmith.train import TrainConfig, fit  # noqa: E402


def train_accuracy(genome, space, *, channels, steps, epochs, seed, lr=1e-2):
    """(test accuracy, seconds) of ``genome`` trained for ``epochs`` with the project trainer."""
    train, test, info = make_loaders("digits", batch_size=64, steps=steps, seed=seed)
    model = build_nas_net(genome, space=space, channels=channels, input_shape=info.input_shape,
                          num_classes=info.num_classes, seed=network_seed(seed, genome))

    def batches(epoch):
        train.generator.manual_seed(seed * 100_003 + epoch)
        return train

    t = time.perf_counter()
    res = fit(model, batches, lambda: test, TrainConfig(epochs=epochs, lr=lr, seed=seed, device="cpu"))
    return res.test_accuracy, time.perf_counter() - t


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--genomes", type=int, default=24)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--cost-genomes", type=int, default=3)
    ap.add_argument("--cost-epochs", type=int, default=10)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--cells", type=int, default=3)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--fitness-batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core box)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    from scipy.stats import kendalltau

    torch.set_num_threads(args.threads)
    space = NasSpace(cells=args.cells)
    train, _, _ = make_loaders("digits", batch_size=args.fitness_batch, steps=args.steps, seed=args.seed)
    x, y = next(iter(train))
    ctx = EvalContext(space=space, batches=((x.numpy(), y.numpy()),), channels=args.channels, seed=args.seed,
                      all_variants=True)
    rng = np.random.default_rng(args.seed)
    genomes = []
    while len(genomes) < args.genomes:
        g = space.sample(rng)
        if g not in genomes:
            genomes.append(g)
    rows = []
    for i, g in enumerate(genomes):
        evaluate_genome(g, ctx)  # warm-up (allocations) so timing measures the steady state
        t = time.perf_counter()
        fit_ = evaluate_genome(g, ctx)
        fit_seconds = time.perf_counter() - t
        acc, train_s = train_accuracy(g, space, channels=args.channels, steps=args.steps, epochs=args.epochs,
                                      seed=args.seed)
        rows.append({"genome": list(g), "arch": [c.motif for c in space.decode(g).cells], "scores": fit_["scores"],
                     "degenerate": fit_["degenerate"], "synops": fit_["synops"], "params": fit_["params"],
                     "fitness_seconds": fit_seconds, "accuracy": acc, "train_seconds": train_s})
        print(f"[{i + 1}/{len(genomes)}] acc={acc:.3f} fit={fit_seconds * 1e3:.0f} ms train={train_s:.1f} s "
              + " ".join(f"{k}={v:.3f}" for k, v in fit_["scores"].items()), flush=True)
    acc = np.array([r["accuracy"] for r in rows])
    taus = {}
    for key in rows[0]["scores"]:
        s = np.array([r["scores"][key] for r in rows])
        tau, p = kendalltau(s, acc)
        taus[key] = {"tau": float(tau), "p_value": float(p)}
    cost = []
    for g in genomes[: args.cost_genomes]:
        t = time.perf_counter()
        evaluate_genome(g, ctx)
        f_s = time.perf_counter() - t
        _, t_s = train_accuracy(g, space, channels=args.channels, steps=args.steps, epochs=args.cost_epochs,
                                seed=args.seed)
        cost.append({"genome": list(g), "fitness_seconds": f_s, "train_seconds": t_s, "ratio": t_s / f_s})
        print(f"cost: fitness {f_s * 1e3:.0f} ms vs {args.cost_epochs}-epoch training {t_s:.1f} s "
              f"(x{t_s / f_s:.0f})", flush=True)
    summary = {
        "settings": vars(args) | {"out": str(args.out) if args.out else None},
        "kendall_tau_vs_accuracy": taus,
        "cost": cost,
        "median_cost_ratio": float(np.median([c["ratio"] for c in cost])) if cost else None,
        "accuracy_range": [float(acc.min()), float(acc.max())],
        "rows": rows,
    }
    print(json.dumps({k: summary[k] for k in ("kendall_tau_vs_accuracy", "median_cost_ratio", "accuracy_range")},
                     indent=2))
    if args.out:
        io.write_json(args.out, summary)
    return summary


if __name__ == "__main__":
    main()
