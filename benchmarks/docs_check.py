"""Re-run the cheap figures quoted in docs/ and fail when one no longer reproduces.

Run:  PYTHONPATH=. .venv/bin/python benchmarks/docs_check.py [--all] [--only gee.md,nas.md]

Every figure registered below names the doc it is quoted in, the text quoted there, the command the
doc gives to regenerate it (which must appear in the doc too) and a tolerance. The script checks
that the doc still carries both, re-runs the figure (the cheap ones by default, every one with
--all) and prints one line per figure: doc, figure, quoted value, re-run value, verdict. Exit 1 when
a figure is missing from its doc, lacks its command or re-runs outside its tolerance.
Deterministic figures (parameter counts, seeded searches) have tolerance 0 beyond the doc's
rounding; timings are not registered (they depend on the machine: see the benchmark scripts).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class Figure:
    doc: str  # file under docs/
    name: str
    quoted: str  # the text of the figure as the doc prints it
    command: str  # how the doc says to regenerate it (must appear in the doc)
    value: float  # the quoted value as a number
    tolerance: float  # absolute
    compute: Callable[[], float]
    cheap: bool = True


@lru_cache(maxsize=None)
def _report(arch: str, genes: int):
    from spikesmith.evolve.gee import parameter_report

    return parameter_report(arch, genes)


def _compression(arch: str, genes: int) -> Callable[[], float]:
    return lambda: round(100 * _report(arch, genes).compression, 1)


def _dense(arch: str) -> Callable[[], float]:
    return lambda: float(_report(arch, 64 if arch != "digits" else 16).dense_total)


@lru_cache(maxsize=None)
def _nas_default():
    from spikesmith.evolve.nas import run_nas

    return run_nas(generations=10, population=20, seed=0)


@lru_cache(maxsize=None)
def _ste_generation0():
    from spikesmith.evolve.gee import run_gee_evolution

    return run_gee_evolution(data="digits", population=4, generations=0, final_epochs=0, device="cpu", seed=0)


@lru_cache(maxsize=None)
def _nas_best() -> dict:
    """docs/nas.md's default search, its best network trained 30 epochs and deployed: accuracy per target."""
    from spikesmith import api
    from spikesmith.evolve.nas import run_nas

    with tempfile.TemporaryDirectory() as tmp:
        run_nas(generations=10, population=20, seed=0, out_dir=Path(tmp) / "nas")
        rows = api.train_nas_best(Path(tmp) / "nas", out_dir=Path(tmp) / "trained", epochs=30, lr=1e-2)
    return rows[0]["accuracy"]


@lru_cache(maxsize=None)
def _ablation_digits() -> dict:
    """Budget A of docs/gee.md on digits: test accuracy mean over seeds 0-2 per arm."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from gee import accuracy_comparison  # the benchmark's own arms and runner

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "a.json"
        accuracy_comparison(datasets=["digits"], seeds=[0, 1, 2], genes=16, population=3, generations=2,
                            final_epochs=2, steps=4, max_batches=8, device="cpu", target=0.5, out=out)
        rows = json.loads(out.read_text())["rows"].values()
    arms = {r["arm"] for r in rows}
    return {a: statistics.mean(r["test_accuracy"] for r in rows if r["arm"] == a) for a in arms}


@lru_cache(maxsize=None)
def _inheritance() -> dict:
    """docs/gee.md's Baldwinian vs Lamarckian means over seeds 0-2 (the tests' synthetic data)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from gee import inheritance_comparison

    table = inheritance_comparison(seeds=[0, 1, 2])
    rows = [line.split("|")[1:4] for line in table.splitlines()[2:]]
    return {"baldwinian": sum(float(r[1]) for r in rows) / len(rows),
            "lamarckian": sum(float(r[2]) for r in rows) / len(rows)}


ABLATION_CMD = ("python benchmarks/gee.py --accuracy --data digits,mnist5k --seeds 0,1,2 --population 3 "
                "--generations 2 --final-epochs 2 --max-batches 8 --target 0.5 --out gee_a.json")
INHERITANCE_CMD = "python benchmarks/gee.py --inheritance --seeds 0,1,2"
PARAMS_CMD = "spikesmith evolve gee --arch resnet18 --genes 64,96,128,160 --params-only"
NAS_CMD = "run_nas(generations=10, population=20, seed=0)"
NAS_BEST_CMD = "api.train_nas_best(dir, epochs=30, lr=1e-2)"
STE_CMD = "spikesmith evolve gee --population 4 --generations 0 --final-epochs 0 --device cpu"

FIGURES: list[Figure] = [
    *[Figure("gee.md", f"resnet18 compression at g={g}", f"{v:.1f}%", PARAMS_CMD, v, 0.05, _compression("resnet18", g))
      for g, v in ((32, 89.6), (64, 79.5), (96, 70.1), (128, 61.3), (160, 53.2))],
    *[Figure("gee.md", f"{a} compression at g={g}", f"{v:.1f}%", PARAMS_CMD, v, 0.05, _compression(a, g))
      for a, g, v in (("resnet19", 64, 78.7), ("resnet19", 160, 49.7), ("vgg11", 64, 84.0), ("vgg11", 160, 60.4),
                      ("digits", 4, 86.4), ("digits", 16, 55.2), ("digits", 32, 23.7))],
    *[Figure("gee.md", f"{a} dense parameters", f"{v:,}", PARAMS_CMD, v, 0.0, _dense(a))
      for a, v in (("resnet18", 11_173_962), ("resnet19", 12_697_994), ("vgg11", 9_228_362), ("digits", 25_978))],
    Figure("nas.md", "default search: genomes evaluated", "154 genomes evaluated", NAS_CMD, 154, 0.0,
           lambda: float(_nas_default().evaluated)),
    Figure("nas.md", "default search: front size", "front of 8", NAS_CMD, 8, 0.0,
           lambda: float(len(_nas_default().front))),
    Figure("nas.md", "default search: empty networks on the front", "no empty network", NAS_CMD, 0, 0.0,
           lambda: float(sum(all(c["motif"] == "empty" for c in m.arch["cells"]) for m in _nas_default().front))),
    Figure("nas.md", "best network trained 30 epochs: torch accuracy", "torch 95.8 %", NAS_BEST_CMD, 95.8, 0.05,
           lambda: round(100 * _nas_best()["torch"], 1), cheap=False),
    Figure("nas.md", "best network trained 30 epochs: Lava accuracy", "Lava 95.8 %", NAS_BEST_CMD, 95.8, 0.05,
           lambda: round(100 * _nas_best()["lava"], 1), cheap=False),
    Figure("nas.md", "best network trained 30 epochs: Loihi fixed-point accuracy", "Loihi fixed point 96.1 %",
           NAS_BEST_CMD, 96.1, 0.05, lambda: round(100 * _nas_best()["loihi"], 1), cheap=False),
    Figure("gee.md", "STE generation 0: gradient share of D", "D 0.112", STE_CMD, 0.112, 0.01,
           lambda: round(_ste_generation0().history[0]["shares"]["gradient"]["difference"], 3), cheap=False),
    Figure("gee.md", "STE generation 0: gradient share of H", "H 0.035", STE_CMD, 0.035, 0.01,
           lambda: round(_ste_generation0().history[0]["shares"]["gradient"]["entropy"], 3), cheap=False),
    Figure("gee.md", "STE generation 0: fitness-spread share of D", "D 0.069", STE_CMD, 0.069, 0.01,
           lambda: round(_ste_generation0().history[0]["shares"]["spread"]["difference"], 3), cheap=False),
    *[Figure("gee.md", f"ablation budget A, digits, {arm}: mean test accuracy", f"| digits | {arm} | {p} | {v:.3f} ±",
             ABLATION_CMD, v, 0.0005, (lambda arm=arm: round(_ablation_digits()[arm], 3)), cheap=False)
      for arm, p, v in (("STE (H and D)", "11,642", 0.788), ("STE without H", "11,642", 0.819),
                        ("STE without D", "11,642", 0.814), ("STE without H, D", "11,642", 0.815),
                        ("GEE trained plainly", "11,642", 0.922), ("dense", "25,978", 0.964))],
    Figure("gee.md", "inheritance: Baldwinian mean test accuracy", "| mean | 0.817 |", INHERITANCE_CMD, 0.817,
           0.0005, lambda: round(_inheritance()["baldwinian"], 3), cheap=False),
    Figure("gee.md", "inheritance: Lamarckian mean test accuracy", "| mean | 0.817 | 0.911 |", INHERITANCE_CMD,
           0.911, 0.0005, lambda: round(_inheritance()["lamarckian"], 3), cheap=False),
]


def check(figures: list[Figure], *, rerun_all: bool) -> tuple[list[str], int]:
    """Return (report lines, failures)."""
    lines, failures = [], 0
    for f in figures:
        text = (ROOT / "docs" / f.doc).read_text()
        problems = [what for what, s in (("figure", f.quoted), ("command", f.command)) if s not in text]
        if problems:
            failures += 1
            lines.append(f"FAIL {f.doc}: {f.name}: the doc lacks its {' and '.join(problems)} ({f.quoted!r})")
            print(lines[-1], flush=True)
            continue
        if not (f.cheap or rerun_all):
            lines.append(f"skip {f.doc}: {f.name}: quoted {f.value:,.10g} (not cheap: --all re-runs it)")
            print(lines[-1], flush=True)
            continue
        got = f.compute()
        ok = abs(got - f.value) <= f.tolerance
        failures += not ok
        lines.append(f"{'ok  ' if ok else 'FAIL'} {f.doc}: {f.name}: quoted {f.value:,.10g}, re-run {got:,.10g} "
                     f"(tolerance {f.tolerance:g})")
        print(lines[-1], flush=True)
    return lines, failures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--all", action="store_true", help="also re-run the figures that take minutes")
    ap.add_argument("--only", default=None, help="comma list of doc files (e.g. gee.md)")
    args = ap.parse_args(argv)
    figs = [f for f in FIGURES if args.only is None or f.doc in args.only.split(",")]
    _, failures = check(figs, rerun_all=args.all)
    print(f"{len(figs) - failures} of {len(figs)} figures hold" + (f"; {failures} FAILED" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
