"""The interop table of docs/interop.md, from the interop tests' own measurements.

Run: python benchmarks/interop_table.py [--results FILE] [--doc docs/interop.md]

Runs ``pytest tests/interop`` with SPIKESMITH_INTEROP_RESULTS pointing at a results file (or reads an
existing one with --results), then rewrites the part of the doc between its two interop-table markers
and prints the same tables. A test that fails leaves the doc unchanged: only outcomes the tests
confirmed are published.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- interop-table:start -->", "<!-- interop-table:end -->"
FRAMEWORK_NAMES = {"norse": "Norse", "snntorch": "snnTorch", "spikingjelly": "SpikingJelly", "sinabs": "Sinabs"}
MODES = (("nir", "canonical NIR, importer's defaults"), ("nir+dt", "canonical NIR, our dt passed to the importer"),
         ("for", "`compile --to nir --for FRAMEWORK`"))
NEURONS = ("LIF", "CubaLIF", "IF")


def run_tests(results: Path) -> None:
    env = {**os.environ, "SPIKESMITH_INTEROP_RESULTS": str(results)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "tests/interop"], cwd=ROOT, env=env)
    if proc.returncode != 0:
        sys.exit(f"the interop tests failed (exit {proc.returncode}); docs/interop.md left unchanged")


def _cell(row: dict | None) -> str:
    if row is None:
        return "-"
    if row["error"]:
        text = row["error"].replace("|", "\\|")
        if text.startswith("refused by spikesmith: "):
            why = text.split("): ", 1)[-1].replace(", so it would run differently there", "")
            return f"refused by spikesmith: {why}"
        return f"fails: `{text}`"
    agree = row["agreement"]
    parts = [f"{k} {agree[k]:.3f}" for k in NEURONS if k in agree]
    verdict = "**same spikes**" if all(v == 1.0 for v in agree.values()) else "different spikes"
    return f"{verdict} ({', '.join(parts)})"


def render(rows: list[dict]) -> str:
    """Markdown: a summary per framework, then every (framework, model, mode) outcome."""
    frameworks = [f for f in FRAMEWORK_NAMES if any(r["framework"] == f for r in rows)]
    models = list(dict.fromkeys(r["model"] for r in sorted(rows, key=lambda r: r["model"])))
    by = {(r["framework"], r["model"], r["mode"]): r for r in rows}
    out = ["| framework | version | loads canonical NIR | " + " | ".join(f"`--for` agreement, {n}" for n in NEURONS) + " |",
           "|---|---|---|" + "---|" * len(NEURONS)]
    for f in frameworks:
        version = next(r["version"] for r in rows if r["framework"] == f)
        loads = sum(1 for m in models if by.get((f, m, "nir"), {}).get("loads"))
        cells = []
        for n in NEURONS:
            runs = [by[(f, m, "for")] for m in models if (f, m, "for") in by and n in by[(f, m, "for")]["node_types"]]
            measured = [r["agreement"][n] for r in runs if n in r["agreement"]]
            if not runs:
                cells.append("-")
            elif measured and len(measured) == len(runs):
                cells.append(f"{min(measured):.3f} ({len(runs)} model{'s' * (len(runs) > 1)})")
            elif measured:
                cells.append(f"{min(measured):.3f} ({len(measured)} of {len(runs)} models run)")
            else:
                cells.append("refused" if all(r["error"].startswith("refused") for r in runs) else "fails")
        out.append(f"| {FRAMEWORK_NAMES[f]} | {version} | {loads} of {len(models)} models | " + " | ".join(cells) + " |")
    out += ["", "| framework | model | node types | " + " | ".join(label for _, label in MODES) + " |",
            "|---|---|---|" + "---|" * len(MODES)]
    for f in frameworks:
        for m in models:
            any_row = next((by[(f, m, mode)] for mode, _ in MODES if (f, m, mode) in by), None)
            if any_row is None:
                continue
            out.append(f"| {FRAMEWORK_NAMES[f]} | {m} | {', '.join(any_row['node_types'])} | "
                       + " | ".join(_cell(by.get((f, m, mode))) for mode, _ in MODES) + " |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, help="Render this results file instead of running the tests.")
    ap.add_argument("--doc", type=Path, default=ROOT / "docs" / "interop.md")
    args = ap.parse_args()
    if args.results is None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "interop.json"
            run_tests(path)
            rows = json.loads(path.read_text())["rows"]
    else:
        rows = json.loads(args.results.read_text())["rows"]
    table = render(rows)
    print(table)
    from spikesmith import io

    doc = args.doc.read_text()
    if START not in doc or END not in doc:
        sys.exit(f"{args.doc}: no {START} ... {END} markers to write the table between")
    head, rest = doc.split(START, 1)
    _, tail = rest.split(END, 1)
    io.write_text(args.doc, f"{head}{START}\n{table}\n{END}{tail}")
    print(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
