"""The energy report: counts, energies SNN vs ANN, break-even rate; JSON, Markdown and HTML.

:func:`make_report` computes everything (pure, no files); :func:`write_report` renders it
to ``report.json`` (every figure, ``schema_version``), ``report.md`` (with PNG plots beside
it) and a self-contained ``report.html`` (plots embedded as base64 PNG). All energies are
joules per inference (one sample) and every energy names the profile that produced it.
"""

from __future__ import annotations

import base64
import html
import io as _io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nir
import numpy as np

from spikesmith.energy.macs import OnnxCounts, count_onnx_macs
from spikesmith.energy.model import (
    EnergyBreakdown, LayerEnergy, ann_energy, ann_energy_by_node, break_even_rate, layer_energy_snn, snn_energy,
)
from spikesmith.energy.profiles import Profile, load_profile
from spikesmith.energy.synops import OpCounts, count_ops
from spikesmith.errors import InputError
from spikesmith.io import write_bytes, write_json, write_text
from spikesmith.targets.trace import Trace

SCHEMA_VERSION = 1
_FALLBACK_ANN_PROFILE = "cmos45"


@dataclass(frozen=True, kw_only=True)
class Report:
    """Everything the energy report says, per inference (one sample).

    Attributes:
        counts: the SNN's operation counts.  profile: SNN energy profile.
        snn_energy: SNN energy by kind under ``profile``.
        layers: per-node energy, SNN vs ANN twin (ANN None when the ONNX nodes carry no map).
        ann: ONNX MAC counts of the ANN baseline, or None.  ann_profile: profile of the ANN figures.
        ann_energy: ANN energy per inference in joules, or None.  ann_steps: ANN passes per inference.
        ratio: ``ann_energy / snn_energy.total`` (above 1: the SNN saves energy), or None.
        break_even: see :func:`spikesmith.energy.model.break_even_rate`, or None without an ANN.
        accuracy: the model's accuracy, if given.  gee_macs: GEE weight-generation MACs per inference.
        target, dt: where and with which time step the trace was simulated.
        extra: free-form JSON-ready facts from the caller (model name, dataset, ...).
        notes: caveats collected while computing.
    """

    counts: OpCounts
    profile: Profile
    snn_energy: EnergyBreakdown
    layers: tuple[LayerEnergy, ...]
    ann: OnnxCounts | None = None
    ann_profile: Profile | None = None
    ann_energy: float | None = None
    ann_steps: int = 1
    ratio: float | None = None
    break_even: dict | None = None
    accuracy: float | None = None
    gee_macs: int = 0
    target: str = ""
    extra: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.accuracy is not None and not (0.0 <= self.accuracy <= 1.0):
            raise ValueError(f"Report.accuracy must be a fraction in [0, 1], got {self.accuracy}")
        if (self.ann is None) != (self.ann_energy is None) or (self.ann is None) != (self.ann_profile is None):
            raise ValueError("Report: ann, ann_profile and ann_energy must be given together")
        if self.gee_macs < 0 or self.ann_steps < 1:
            raise ValueError("Report: gee_macs must be >= 0 and ann_steps >= 1")
        try:
            json.dumps(self.extra, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"Report.extra must be JSON-serialisable ({exc})") from None

    def summary(self) -> dict[str, Any]:
        """The headline figures (per inference) as a flat dict."""
        c = self.counts
        return {
            "accuracy": self.accuracy,
            "time_steps": c.steps,
            "dt_s": c.dt,
            "samples": c.batch,
            "snn_synops": c.synops / c.batch,
            "snn_macs": c.macs / c.batch,
            "snn_neuron_updates": c.neuron_updates / c.batch,
            "snn_spikes": c.spikes / c.batch,
            "firing_rate": c.firing_rate,
            "activation_sparsity": c.activation_sparsity,
            "gee_macs": self.gee_macs,
            "ann_macs": None if self.ann is None else self.ann_steps * self.ann.macs / self.ann.batch,
            "ann_flops": None if self.ann is None else self.ann_steps * self.ann.flops / self.ann.batch,
            "snn_energy_j": self.snn_energy.total,
            "snn_energy_profile": self.profile.name,
            "ann_energy_j": self.ann_energy,
            "ann_energy_profile": None if self.ann_profile is None else self.ann_profile.name,
            "energy_ratio_ann_over_snn": self.ratio,
            "break_even_firing_rate": None if self.break_even is None else self.break_even["rate"],
        }

    def to_dict(self) -> dict[str, Any]:
        """Every figure of the report, JSON-ready."""
        return {
            "schema_version": self.schema_version,
            "kind": "spikesmith.energy_report",
            "target": self.target,
            "summary": self.summary(),
            "snn_energy": self.snn_energy.to_dict(),
            "counts": self.counts.to_dict(),
            "layers": [x.to_dict() for x in self.layers],
            "ann": None if self.ann is None else {**self.ann.to_dict(), "steps_per_inference": self.ann_steps},
            "break_even": self.break_even,
            "profiles": {
                "snn": self.profile.to_dict(),
                "ann": None if self.ann_profile is None else self.ann_profile.to_dict(),
            },
            "extra": self.extra,
            "notes": list(self.notes),
        }


def _ann_profile(profile: Profile, ann_profile) -> tuple[Profile, str | None]:
    if ann_profile is not None:
        p = load_profile(ann_profile)
        if "ann" not in p.use:
            raise InputError(f"energy profile '{p.name}' ({p.path}) is not meant for ANN baselines (use: {list(p.use)})")
        return p, None
    if "ann" in profile.use:
        return profile, None
    return load_profile(_FALLBACK_ANN_PROFILE), (
        f"profile '{profile.name}' prices no ANN; the ANN baseline uses '{_FALLBACK_ANN_PROFILE}'"
    )


def make_report(
    *,
    graph: nir.NIRGraph,
    trace: Trace,
    ann_onnx: str | os.PathLike | OnnxCounts | None = None,
    profile: str | os.PathLike | Profile = "cmos45",
    ann_profile: str | os.PathLike | Profile | None = None,
    accuracy: float | None = None,
    extra: dict | None = None,
    gee_macs: int | None = None,
    ann_steps: int = 1,
) -> Report:
    """Count the trace's operations on ``graph`` and price them, SNN vs ANN; returns a :class:`Report`.

    ``ann_onnx``: the ANN baseline (ONNX path, e.g. from
    :func:`spikesmith.targets.onnx.export_ann_twin`, or precomputed counts); its per-node
    energies map onto NIR nodes when the file carries spikesmith's node map. ``ann_profile``
    defaults to ``profile`` when that prices ANNs, else ``cmos45``. ``gee_macs``: MACs of GEE
    weight generation, paid once per inference. ``ann_steps``: ANN forward passes per
    inference (1 for a static input; T to run the ANN on every frame).
    """
    snn_profile = load_profile(profile)
    if "snn" not in snn_profile.use:
        raise InputError(f"energy profile '{snn_profile.name}' ({snn_profile.path}) cannot price an SNN "
                         f"(use: {list(snn_profile.use)})")
    counts = count_ops(graph, trace)
    gee = int(gee_macs or 0)
    breakdown = snn_energy(counts, snn_profile, gee_macs=gee)
    notes = list(counts.notes)
    for key in ("neuron_update", "spike"):
        if not snn_profile.has(key):
            notes.append(f"profile '{snn_profile.name}' does not price '{key}': counted but charged 0 J")

    ann = None
    a_profile = None
    e_ann = None
    ann_by_node: dict[str, float] = {}
    if ann_onnx is not None:
        ann = ann_onnx if isinstance(ann_onnx, OnnxCounts) else count_onnx_macs(ann_onnx)
        a_profile, note = _ann_profile(snn_profile, ann_profile)
        if note:
            notes.append(note)
        e_ann = ann_energy(ann, a_profile, steps=ann_steps)
        meta = dict(ann.metadata)
        if "spikesmith.node_map" in meta:
            ann_by_node = ann_energy_by_node(ann, a_profile, json.loads(meta["spikesmith.node_map"]), steps=ann_steps)
            notes.extend(json.loads(meta.get("spikesmith.notes", "[]")))
        else:
            notes.append(f"{ann.source}: ONNX nodes carry no NIR node map; no per-layer ANN energy")

    layers = tuple(
        LayerEnergy(name=x.name, node_type=x.node_type, snn=layer_energy_snn(x, snn_profile, counts.batch),
                    ann=ann_by_node.get(x.name) if ann_by_node else None)
        for x in counts.layers
    )
    ratio = None
    if e_ann is not None and breakdown.total > 0:
        ratio = e_ann / breakdown.total
    be = None if e_ann is None else break_even_rate(counts, snn_profile, e_ann, gee_macs=gee)
    return Report(
        counts=counts, profile=snn_profile, snn_energy=breakdown, layers=layers, ann=ann,
        ann_profile=a_profile, ann_energy=e_ann, ann_steps=ann_steps, ratio=ratio, break_even=be,
        accuracy=accuracy, gee_macs=gee, target=trace.target, extra=dict(extra or {}), notes=tuple(notes),
    )


# ---------------------------------------------------------------- rendering


def _fmt_energy(j: float | None) -> str:
    if j is None:
        return "n/a"
    if j == 0:
        return "0 J"
    for unit, scale in (("J", 1.0), ("mJ", 1e-3), ("µJ", 1e-6), ("nJ", 1e-9), ("pJ", 1e-12), ("fJ", 1e-15)):
        if abs(j) >= scale:
            return f"{j / scale:.4g} {unit}"
    return f"{j:.3g} J"


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if math.isfinite(v) and v == int(v) and abs(v) < 1e15:
            return f"{int(v):,}"
        return f"{v:.4g}"
    return str(v)


def _summary_rows(r: Report) -> list[tuple[str, str]]:
    s = r.summary()
    snn_p, ann_p = r.profile.name, (r.ann_profile.name if r.ann_profile else "n/a")
    be = r.break_even
    rows = [
        ("Accuracy", "n/a" if s["accuracy"] is None else f"{100 * s['accuracy']:.2f} %"),
        ("Time steps (dt)", f"{s['time_steps']} ({s['dt_s']:.3g} s)"),
        ("Samples counted", _fmt(s["samples"])),
        ("SNN synaptic ops (SOPs) / inference", _fmt(s["snn_synops"])),
        ("SNN analog MACs / inference", _fmt(s["snn_macs"])),
        ("SNN neuron updates / inference", _fmt(s["snn_neuron_updates"])),
        ("SNN spikes / inference", _fmt(s["snn_spikes"])),
        ("Mean firing rate (spikes/neuron/step)", _fmt(s["firing_rate"])),
        ("Activation sparsity (spiking layers)", _fmt(s["activation_sparsity"])),
        ("ANN MACs / inference", _fmt(s["ann_macs"])),
        ("ANN element-wise FLOPs / inference", _fmt(s["ann_flops"])),
        (f"SNN energy / inference [{snn_p}]", _fmt_energy(s["snn_energy_j"])),
        (f"ANN energy / inference [{ann_p}]", _fmt_energy(s["ann_energy_j"])),
        ("Energy ratio ANN / SNN (above 1: the SNN saves)", "n/a" if r.ratio is None else f"{r.ratio:.3g}x"),
        (f"Break-even firing rate [{snn_p} vs {ann_p}]",
         "n/a" if be is None or be["rate"] is None else f"{be['rate']:.4g}"),
    ]
    if r.gee_macs:
        rows.insert(11, ("GEE weight generation MACs / inference", _fmt(r.gee_macs)))
    return rows


def _breakdown_rows(r: Report) -> list[tuple[str, str]]:
    e = r.snn_energy
    p = r.profile
    return [
        ("Synaptic ops (SOPs x ac)", _fmt_energy(e.synaptic)),
        ("Analog MACs (x mac)", _fmt_energy(e.analog_macs)),
        ("Neuron updates (x neuron_update)", _fmt_energy(e.neuron_updates)),
        ("Spikes (x spike)", _fmt_energy(e.spikes)),
        ("GEE weight generation (x mac, once per inference)", _fmt_energy(e.gee)),
        (f"Total [{p.name}]", _fmt_energy(e.total)),
    ]


_LAYER_HEAD = ("Layer", "Type", "SOPs", "MACs", "Neurons", "Spikes", "Firing rate", "Sparsity",
               "SNN energy", "ANN energy")


def _layer_rows(r: Report) -> list[tuple[str, ...]]:
    B = r.counts.batch
    rows = []
    energy = {x.name: x for x in r.layers}
    for x in r.counts.layers:
        e = energy[x.name]
        rows.append((
            x.name, x.node_type,
            _fmt(x.synops / B) if x.kind == "synapse" else "",
            _fmt(x.macs / B) if x.kind == "synapse" else "",
            _fmt(x.neurons) if x.kind == "neuron" else "",
            _fmt(x.spikes / B) if x.spiking else "",
            _fmt(x.firing_rate) if x.spiking else "",
            _fmt(x.activation_sparsity) if x.kind == "neuron" else "",
            _fmt_energy(e.snn), _fmt_energy(e.ann) if e.ann is not None else "",
        ))
    return rows


def _constant_rows(r: Report) -> list[tuple[str, ...]]:
    rows = []
    profiles = [("SNN", r.profile)] + ([("ANN", r.ann_profile)] if r.ann_profile else [])
    seen = set()
    for role, p in profiles:
        if p.name in seen:
            continue
        seen.add(p.name)
        for section, consts in (("used", p.constants), ("reference only", p.reference)):
            for key, c in consts.items():
                rows.append((p.name, key, f"{c.value:g} {c.unit}", "yes" if c.estimate else "no", section,
                             c.source + (f" ({c.note})" if c.note else "")))
    return rows


def _plots(r: Report) -> dict[str, bytes]:
    """PNG bytes of the report's plots, keyed by file stem."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    def png(fig) -> bytes:
        FigureCanvasAgg(fig)
        buf = _io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        return buf.getvalue()

    out = {}
    c = r.counts
    spiking = [x for x in c.layers if x.spiking]

    fig = Figure(figsize=(6.4, 3.2))
    ax = fig.add_subplot()
    if spiking:
        names = [x.name for x in spiking]
        ax.bar(range(len(names)), [x.firing_rate for x in spiking], color="#3b7dd8")
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    else:
        ax.text(0.5, 0.5, "no spiking layers", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("spikes / neuron / step")
    ax.set_title("Firing rate per layer")
    out["firing_rate"] = png(fig)

    fig = Figure(figsize=(6.4, 3.2))
    ax = fig.add_subplot()
    names = [x.name for x in r.layers]
    idx = np.arange(len(names))
    w = 0.4
    ax.bar(idx - w / 2, [x.snn for x in r.layers], w, label=f"SNN [{r.profile.name}]", color="#3b7dd8")
    if any(x.ann is not None for x in r.layers):
        ax.bar(idx + w / 2, [x.ann or 0.0 for x in r.layers], w,
               label=f"ANN [{r.ann_profile.name if r.ann_profile else ''}]", color="#e07b39")
    ax.set_xticks(idx, names, rotation=30, ha="right")
    if any(x.snn > 0 for x in r.layers) or any((x.ann or 0) > 0 for x in r.layers):
        ax.set_yscale("log")
    ax.set_ylabel("J / inference")
    ax.set_title("Energy per layer")
    ax.legend(fontsize=8)
    out["energy_per_layer"] = png(fig)

    fig = Figure(figsize=(6.4, 3.2))
    ax = fig.add_subplot()
    steps = np.arange(c.steps)
    for x in spiking:
        ax.plot(steps, np.asarray(x.spikes_per_step) / c.batch, marker=".", label=x.name)
    ax.set_xlabel("time step")
    ax.set_ylabel("spikes / sample")
    ax.set_title("Spikes over time")
    if spiking:
        ax.legend(fontsize=8)
    out["spikes_over_time"] = png(fig)
    return out


def _md_table(head, rows) -> str:
    def cell(v) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(cell(h) for h in head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _title(r: Report) -> str:
    model = r.extra.get("model") if isinstance(r.extra, dict) else None
    return "Energy report" + (f": {model}" if model else "")


def render_markdown(r: Report, plot_files: dict[str, str]) -> str:
    """The report as Markdown; ``plot_files`` maps plot stems to file names beside it."""
    parts = [f"# {_title(r)}", ""]
    if r.target:
        parts += [f"Simulated on `{r.target}`. All figures per inference (one sample).", ""]
    parts += ["## Summary", "", _md_table(("Figure", "Value"), _summary_rows(r)), ""]
    if r.break_even:
        parts += [f"**Break-even:** {r.break_even['verdict']}. Model: {r.break_even['model']}.", ""]
    parts += ["## SNN energy by operation", "", _md_table(("Part", "Energy"), _breakdown_rows(r)), ""]
    parts += ["## Per layer", "", _md_table(_LAYER_HEAD, _layer_rows(r)), ""]
    parts += ["## Plots", ""] + [f"![{stem}]({name})" for stem, name in plot_files.items()] + [""]
    parts += ["## Energy constants", "",
              _md_table(("Profile", "Constant", "Value", "Estimate", "Role", "Source"), _constant_rows(r)), ""]
    if r.notes:
        parts += ["## Notes", ""] + [f"- {n}" for n in r.notes] + [""]
    if r.extra:
        parts += ["## Extra", "", "```json", json.dumps(r.extra, indent=2), "```", ""]
    return "\n".join(parts)


def _html_table(head, rows) -> str:
    h = "".join(f"<th>{html.escape(str(x))}</th>" for x in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f5f8}td:nth-child(n+3){font-variant-numeric:tabular-nums}
.plots img{max-width:49%;margin:.3em 0}.verdict{background:#f6f8e8;padding:.6em;border-left:4px solid #9ab33a}
.note{color:#555;font-size:.9em}
"""


def render_html(r: Report, plots: dict[str, bytes]) -> str:
    """The report as one self-contained HTML page (plots embedded as base64 PNG)."""
    imgs = "".join(
        f'<img alt="{html.escape(stem)}" src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}">'
        for stem, data in plots.items()
    )
    verdict = ""
    if r.break_even:
        verdict = (f'<p class="verdict"><b>Break-even:</b> {html.escape(r.break_even["verdict"])}.<br>'
                   f'<span class="note">Model: {html.escape(r.break_even["model"])}.</span></p>')
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in r.notes)
    target = f"<p>Simulated on <code>{html.escape(r.target)}</code>. All figures per inference (one sample).</p>" \
        if r.target else ""
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(_title(r))}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(_title(r))}</h1>{target}"
        f"<h2>Summary</h2>{_html_table(('Figure', 'Value'), _summary_rows(r))}{verdict}"
        f"<h2>Plots</h2><div class=\"plots\">{imgs}</div>"
        f"<h2>SNN energy by operation</h2>{_html_table(('Part', 'Energy'), _breakdown_rows(r))}"
        f"<h2>Per layer</h2>{_html_table(_LAYER_HEAD, _layer_rows(r))}"
        f"<h2>Energy constants</h2>"
        f"{_html_table(('Profile', 'Constant', 'Value', 'Estimate', 'Role', 'Source'), _constant_rows(r))}"
        + (f"<h2>Notes</h2><ul>{notes}</ul>" if notes else "")
        + f"<p class=\"note\">spikesmith energy report, schema version {r.schema_version}.</p>"
        "</body></html>\n"
    )


def write_report(report: Report, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write report.json, report.md (+ PNG plots) and a self-contained report.html; returns the paths."""
    out = Path(out_dir)
    plots = _plots(report)
    paths: dict[str, Path] = {"json": write_json(out / "report.json", report.to_dict())}
    plot_files = {}
    for stem, data in plots.items():
        paths[f"plot_{stem}"] = write_bytes(out / f"{stem}.png", data)
        plot_files[stem] = f"{stem}.png"
    paths["md"] = write_text(out / "report.md", render_markdown(report, plot_files))
    paths["html"] = write_text(out / "report.html", render_html(report, plots))
    return paths
