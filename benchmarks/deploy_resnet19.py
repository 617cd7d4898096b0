"""The full-width GEE ResNet-19 on the deployment path: model file -> NIR -> reference -> energy report.

    python benchmarks/deploy_resnet19.py [--genes 128] [--samples 4] [--steps 4] [-o out/resnet19]

Builds the ResNet-19 of the tdBN papers with GEE weights (untrained; batch-norm statistics taken
from a synthetic CIFAR-shaped batch so that every layer spikes), writes it as a model file, then runs
exactly what ``spikesmith energy-report MODEL.pt --input X.npy --target norse`` runs: export to NIR,
simulate on the reference, count synaptic operations per layer from the spikes, export the ANN twin to
ONNX and count its MACs, write report.json/.md/.html. Prints the wall time of each part and the
process's peak resident memory.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spikesmith import api, io  # noqa: E402
from spikesmith.nn import build, save_model  # noqa: E402
from spikesmith.nn.families.gee import GeeSpec  # noqa: E402


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--genes", type=int, default=128)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("-o", "--out", type=Path, default=Path("out/resnet19"))
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    t0 = time.perf_counter()
    spec = GeeSpec(arch="resnet19", genes=args.genes, width=args.width, input_shape=(3, 32, 32), num_classes=10)
    net = build(spec, seed=0)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(args.steps, args.samples, 3, 32, 32, generator=gen)  # direct (analog) input in [0, 1)
    for m in net.modules():  # statistics of this batch, shifted up: an untrained net that spikes throughout
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
            with torch.no_grad():
                m.bias.fill_(0.5)
    net.train()
    with torch.no_grad():
        net(x)
    net.eval()
    model = save_model(args.out / "model.pt", net, spec, steps=args.steps, encoding="direct")
    inputs = io.save_array(args.out / "x.npy", x.double().numpy())
    t_build = time.perf_counter() - t0

    t0 = time.perf_counter()
    summary, files = api.energy_report(model, input_path=inputs, target="norse", out_dir=args.out)
    t_report = time.perf_counter() - t0
    params = net.num_parameters()
    print(f"GEE ResNet-19, g={args.genes}, width {args.width}: {params:,} trained parameters; "
          f"{args.samples} samples x {args.steps} steps of 3x32x32")
    print(f"build + model file: {t_build:.1f} s; energy-report (export, reference, SOPs, ONNX MACs, report): "
          f"{t_report:.1f} s; peak memory {peak_mib():,.0f} MiB")
    print(f"SNN {summary['snn_synops']:,.0f} SOPs + {summary['snn_macs']:,.0f} MACs per sample vs ANN "
          f"{summary['ann_macs']:,.0f} MACs; energy SNN {summary['snn_energy_j'] * 1e6:.2f} uJ vs ANN "
          f"{(summary.get('ann_energy_j') or float('nan')) * 1e6:.2f} uJ ({summary['snn_energy_profile']})")
    print("wrote " + ", ".join(sorted(Path(p).name for p in files.values())) + f" to {args.out}")


if __name__ == "__main__":
    main()
