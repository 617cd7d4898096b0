"""Export the trained model to a NIR file and read it back."""

import sys
from pathlib import Path

from spikesmith import api

out = Path(sys.argv[1] if len(sys.argv) > 1 else "out/examples")
path, _ = api.compile_model(out / "model.pt", out=out / "model.nir")
graph = api.load_graph(path)
print(f"wrote {path}: {len(graph.nodes)} nodes, dt = {graph.metadata['spikesmith.dt']} s")
