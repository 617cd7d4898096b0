"""Find a conv SNN for digits with the training-free RDM search."""

import sys
from pathlib import Path

from spikesmith import api, io

out = Path(sys.argv[1] if len(sys.argv) > 1 else "out/examples")
result = api.evolve_architecture(population=4, generations=2, seed=0, steps=4,
                                 on_progress=lambda stage, row: print(f"generation {row['generation']}: best {row['best']:.4f}"))
io.write_json(out / "genes.json", result.best.values)
print("best genes:", result.best.values, "score", round(result.best.score, 4))
