"""Count synaptic operations from Lava's spikes, compare with the ANN twin's MACs, write the report."""

import sys
from pathlib import Path

import numpy as np

from spikesmith import api
from spikesmith.data import direct, load_digits_split
from spikesmith.energy import make_report, write_report
from spikesmith.targets.onnx import export_ann_twin

out = Path(sys.argv[1] if len(sys.argv) > 1 else "out/examples")
graph = api.load_graph(out / "model.nir")
split = load_digits_split(seed=0)
x = direct(split.x_test[:20], 4).astype(np.float64)
trace = api.simulate(graph, x, target="lava", dt=1e-3)
onnx_path = export_ann_twin(graph, out / "ann_twin.onnx")
report = make_report(graph=graph, trace=trace, ann_onnx=onnx_path, profile="cmos45")
files = write_report(report, out / "energy")
print("wrote", ", ".join(sorted(p.name for p in files.values())))
