"""Per-sample time of Lava (floating and fixed point) vs the Norse reference, for growing networks.

Run: python benchmarks/lava_vs_norse.py [--samples 20] [--steps 16]
Prints one table; ratios are Lava time / Norse time for the same graph and input, in one run.
Compilation (process building) is reported separately from simulation.
"""

from __future__ import annotations

import argparse
import time

import nir
import numpy as np


def mlp(n_in: int, hidden: int, n_out: int, seed: int = 0) -> nir.NIRGraph:
    rng = np.random.default_rng(seed)

    def lif(n):
        return nir.LIF(tau=np.full(n, 3e-3), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n),
                       v_reset=np.zeros(n))

    nodes = {"in": nir.Input(input_type={"input": np.array([n_in])}),
             "fc1": nir.Affine(weight=rng.normal(0, 2.5 / np.sqrt(n_in), (hidden, n_in)), bias=np.zeros(hidden)),
             "l1": lif(hidden),
             "fc2": nir.Affine(weight=rng.normal(0, 2.5 / np.sqrt(hidden), (hidden, hidden)), bias=np.zeros(hidden)),
             "l2": lif(hidden),
             "fc3": nir.Affine(weight=rng.normal(0, 2.5 / np.sqrt(hidden), (n_out, hidden)), bias=np.zeros(n_out)),
             "l3": lif(n_out), "out": nir.Output(output_type={"output": np.array([n_out])})}
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])))


def main() -> None:
    from spikesmith.targets.lava import simulate as lava
    from spikesmith.targets.reference import simulate as reference

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--steps", type=int, default=16)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'network':<22}{'neurons':>8}{'norse ms':>10}{'lava-float ms':>15}{'lava-fixed ms':>15}"
          f"{'float/norse':>13}{'fixed/norse':>13}{'compile s':>11}{'identical':>11}")
    for hidden in (32, 128, 512, 1024):
        g = mlp(64, hidden, 10)
        x = (rng.random((args.steps, args.samples, 64)) < 0.2).astype(float)
        t0 = time.perf_counter()
        ref = reference(g, x, dt=1e-3, record=False)
        t_ref = (time.perf_counter() - t0) / args.samples
        lf = lava(g, x, dt=1e-3, record=False)
        lq = lava(g, x, dt=1e-3, record=False, fixed_point=True)
        same = bool((ref.output == lf.output).all())
        print(f"{'MLP 64-' + str(hidden) + '-' + str(hidden) + '-10':<22}{2 * hidden + 10:>8}{t_ref * 1e3:>10.2f}"
              f"{lf.per_sample_seconds() * 1e3:>15.2f}{lq.per_sample_seconds() * 1e3:>15.2f}"
              f"{lf.per_sample_seconds() / t_ref:>13.1f}{lq.per_sample_seconds() / t_ref:>13.1f}"
              f"{lf.compile_seconds:>11.2f}{str(same):>11}")


if __name__ == "__main__":
    main()
