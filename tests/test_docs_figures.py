"""The cheap figures quoted in docs/ still reproduce (benchmarks/docs_check.py; `--all` re-runs the rest)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_cheap_doc_figures_reproduce_and_every_figure_keeps_its_command():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import docs_check

    lines, failures = docs_check.check(docs_check.FIGURES, rerun_all=False)
    assert failures == 0, "\n".join(line for line in lines if line.startswith("FAIL"))
    reran = [line for line in lines if line.startswith("ok")]
    skipped = [line for line in lines if line.startswith("skip")]
    assert len(reran) == sum(f.cheap for f in docs_check.FIGURES) and len(skipped) == len(lines) - len(reran)
