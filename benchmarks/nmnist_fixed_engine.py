"""A test set's worth of N-MNIST-shaped samples through the Sinabs CNN on the fixed-point engine.

Run: python benchmarks/nmnist_fixed_engine.py [--samples 10000] [--steps 300] [--batch-size 256]
         [--calibration 256] [--device cpu] [--corpus ../shared/nir-corpus]

The inputs are synthetic event frames shaped like N-MNIST's (2 x 34 x 34, about 4,000 events per
sample over 300 steps; see benchmarks/lava_vs_norse.py), generated chunk by chunk from a fixed seed
so the whole set is never held in memory. The plan is quantised once, with state scales from a
floating-point run of the first ``--calibration`` samples; then every chunk runs on the engine.
Prints the wall time of the engine run over all samples, per sample and per second, and the 24-bit
wraps of u per population (0 when the scales hold).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nir
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lava_vs_norse import nmnist_like  # noqa: E402


def main() -> None:
    from spikesmith.compile.graph import flatten
    from spikesmith.compile.plan import build_plan
    from spikesmith.targets import loihi

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--calibration", type=int, default=256)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "nir-corpus")
    args = ap.parse_args()
    flat = flatten(nir.read(str(args.corpus / "cnn_sinabs.nir")))
    plan = build_plan(flat, 1e-3)
    t0 = time.perf_counter()
    qplan = loihi.prepare(plan, nmnist_like(args.steps, args.calibration, seed=10**6), device=args.device)
    t_quant = time.perf_counter() - t0
    engine = loihi.Engine(qplan, device=args.device)
    wraps = {p.name: 0 for p in plan.neurons}
    counts = np.zeros(10, dtype=np.int64)
    run_s = gen_s = 0.0
    done = 0
    for i, start in enumerate(range(0, args.samples, args.batch_size)):
        n = min(args.batch_size, args.samples - start)
        t = time.perf_counter()
        x = nmnist_like(args.steps, n, seed=i)
        gen_s += time.perf_counter() - t
        t = time.perf_counter()
        res = engine.run(x, record=False, batch_size=n)
        run_s += time.perf_counter() - t
        counts += np.bincount(res["activity"][flat.outputs[0] if flat.outputs[0] in res["activity"]
                                              else plan.readouts[0].population].sum(0).argmax(-1), minlength=10)
        for k, w in res["wraps"].items():
            wraps[k] += w
        done += n
        print(f"[{run_s:7.1f}s] {done:,}/{args.samples:,} samples", file=sys.stderr, flush=True)
    print(f"cnn_sinabs.nir, {args.samples:,} samples x {args.steps} steps on the fixed-point engine ({args.device}, "
          f"chunks of {args.batch_size}):")
    print(f"  engine run {run_s:.1f} s = {run_s / args.samples * 1e3:.2f} ms per sample "
          f"({args.samples / run_s:.1f} samples/s); quantisation (float calibration on {args.calibration} "
          f"samples) {t_quant:.1f} s; input generation {gen_s:.1f} s (not counted)")
    print(f"  u wraps per population: {wraps}; predicted-class histogram {counts.tolist()}")


if __name__ == "__main__":
    main()
