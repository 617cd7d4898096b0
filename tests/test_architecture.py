"""The stage boundaries of STYLE.md, checked with import-linter."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    r = subprocess.run([exe, str(ROOT / "pyproject.toml")], capture_output=True, text=True, cwd=ROOT,
                       timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    contracts = (ROOT / "pyproject.toml").read_text().count("[[tool.importlinter.contracts]]")
    found = re.search(r"Contracts: (\d+) kept, (\d+) broken", r.stdout)
    assert found, r.stdout[-2000:]
    assert (int(found[1]), int(found[2])) == (contracts, 0)  # every contract of pyproject.toml checked and kept
