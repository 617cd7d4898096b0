"""Train the evolved genes with Norse (CUDA if available) and save model.pt."""

import sys
from pathlib import Path

from spikesmith import api, io

out = Path(sys.argv[1] if len(sys.argv) > 1 else "out/examples")
genes = io.read_json(out / "genes.json") if (out / "genes.json").exists() else \
    {"c1": 8, "c2": 16, "hidden": 0, "tau_steps": 2.0, "v_th": 0.5}
model, spec, result = api.train_model(genes, epochs=3, steps=4, seed=0, out_dir=out)
print(f"test accuracy {result.test_accuracy:.3f} on {result.device}; saved {out / 'model.pt'}")
