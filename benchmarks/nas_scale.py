"""Forward time of the MSE-NAS network at the seeds' scale, without and with reduction cells, in one run.

Run:  .venv/bin/python benchmarks/nas_scale.py [--cells 6] [--channels 48] [--steps 10] [--batch 8]
          [--size 32] [--genomes 2] [--repeats 3] [--warmup 1] [--device cpu|cuda] [--threads 1] [--json out.json]

For each of ``--genomes`` architectures sampled from ``NasSpace(cells)`` with a fixed seed, the same
architecture is wired twice on a 3 x size x size input:

  no reductions       every population at the input's resolution (``NasSpace(reductions=())``)
  reductions          the DARTS-like skeleton (default ``NasSpace``): cells ``cells//3+1`` and
                      ``2*cells//3+1`` (3 and 5 of 6) halve the resolution and double the channels
  reductions, 1x width   the same reduction cells without the doubling (``channel_growth=1``), to show
                      where the work goes

and one forward pass (eval mode, no gradient, T steps, direct-encoded random images) is timed per
repeat, the two variants alternating so that load on the machine hits both alike. Reported per
variant: the median seconds per batch, LIF neurons, dense MACs per time step (every existing weight
times the output positions it is applied at) and parameters; the ratio column is "no reductions"
over "reductions" for the same architecture, measured in this one run.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spikesmith.evolve.nas import NasSpace, wire  # noqa: E402
from spikesmith.nn import DT, build  # noqa: E402
from spikesmith.nn.families.nas import Wiring  # noqa: E402

VARIANTS = {"no reductions": ((), 2), "reductions": (None, 2), "reductions, 1x width": (None, 1)}


def cost(w: Wiring) -> dict:
    """LIF neurons, dense MACs per time step and weights of a wiring (relays are free copies)."""
    neurons = macs = params = 0
    for p in w.populations:
        if p.kind != "relay":
            h, wd = w.spatial(p.name)
            neurons += p.channels * h * wd
    for c in w.connections:
        if c.relay:
            continue
        nonzero = int(w.mask(c).sum())
        h, wd = w.spatial(c.dst)
        macs += nonzero * h * wd
        params += nonzero
    return {"neurons": neurons, "macs_per_step": macs, "params": params}


def timed_forward(model, x, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    with torch.inference_mode():
        model(x)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=6)
    ap.add_argument("--channels", type=int, default=48)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--genomes", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    shape = (3, args.size, args.size)
    x = torch.rand(args.steps, args.batch, *shape, generator=torch.Generator().manual_seed(args.seed)).to(device)
    genomes = [NasSpace(cells=args.cells).sample(rng)
               for rng in (np.random.default_rng(s) for s in np.random.SeedSequence(args.seed).spawn(args.genomes))]
    rows = []
    for g_index, genome in enumerate(genomes):
        models, info = {}, {}
        for name, (reductions, growth) in VARIANTS.items():
            space = NasSpace(cells=args.cells, reductions=reductions, channel_growth=growth)
            w = wire(space.decode(genome), space=space, channels=args.channels, input_shape=shape)
            models[name] = build(w, seed=args.seed, dt=DT).to(device).eval()
            info[name] = {**cost(w), "reduction_cells": list(space.reduction_cells(shape[1:])),
                          "readout_hw": list(w.spatial(w.readout_src))}
        times = {name: [] for name in VARIANTS}
        for r in range(args.warmup + args.repeats):
            for name, model in models.items():
                t = timed_forward(model, x, device)
                if r >= args.warmup:
                    times[name].append(t)
        motifs = [c.motif for c in NasSpace(cells=args.cells).decode(genome).cells]
        for name in VARIANTS:
            rows.append({"genome": g_index, "motifs": motifs, "variant": name, "seconds": times[name],
                         "median_s": statistics.median(times[name]), **info[name]})
        del models
    dev = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {args.threads} torch thread(s)"
    print(f"MSE-NAS forward, {args.cells} cells x {args.channels} channels, T={args.steps}, batch {args.batch}, "
          f"input 3x{args.size}x{args.size}, {dev}; median of {args.repeats} (after {args.warmup} warm-up)")
    print("| genome (motifs) | variant | reduction cells | readout HxW | s / batch | ratio | LIF neurons | "
          "MMAC / step | params |")
    print("|---|---|---|---|---|---|---|---|---|")
    for g_index in range(len(genomes)):
        pair = {r["variant"]: r for r in rows if r["genome"] == g_index}
        base = pair["no reductions"]["median_s"]
        for name, r in pair.items():
            r["ratio"] = base / r["median_s"]
            print(f"| {g_index} ({', '.join(r['motifs'])}) | {name} | {r['reduction_cells'] or '-'} | "
                  f"{'x'.join(map(str, r['readout_hw']))} | {r['median_s']:.2f} | {r['ratio']:.2f}x | "
                  f"{r['neurons']:,} | {r['macs_per_step'] / 1e6:.0f} | {r['params']:,} |")
    result = {"schema_version": 1, "device": dev, "args": {k: (str(v) if isinstance(v, Path) else v)
                                                            for k, v in vars(args).items()}, "rows": rows}
    if args.json:
        from spikesmith.io import write_json

        write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
