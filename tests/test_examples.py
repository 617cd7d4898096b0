"""Every example runs, in order, as a user would run it."""

import subprocess
import sys
from pathlib import Path

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


def test_examples_run_in_order(tmp_path):
    assert len(EXAMPLES) >= 5
    for script in EXAMPLES:
        r = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"{script.name} failed:\n{r.stderr[-2000:]}"
    assert (tmp_path / "model.nir").is_file()
    assert (tmp_path / "energy" / "report.json").is_file()
