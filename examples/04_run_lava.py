"""Run the NIR graph on Lava (Loihi-style, floating point) and on the Norse reference."""

import sys
from pathlib import Path

import numpy as np

from spikesmith import api
from spikesmith.data import direct, load_digits_split

out = Path(sys.argv[1] if len(sys.argv) > 1 else "out/examples")
graph = api.load_graph(out / "model.nir")
split = load_digits_split(seed=0)
x = direct(split.x_test[:20], 4).astype(np.float64)
y = split.y_test[:20]
dt, _ = api.resolve_dt(graph, None)
ref = api.simulate(graph, x, target="norse", dt=dt)
lava = api.simulate(graph, x, target="lava", dt=dt)
print(f"accuracy norse {np.mean(ref.output.sum(0).argmax(-1) == y):.2f}, "
      f"lava {np.mean(lava.output.sum(0).argmax(-1) == y):.2f}; "
      f"identical output spikes {np.mean(ref.output == lava.output):.4f}; "
      f"{lava.per_sample_seconds() * 1e3:.1f} ms/sample on Lava")
