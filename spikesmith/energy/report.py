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


def _break_even_rate(r: Report) -> float | None:
    return None if r.break_even is None else r.break_even.get("rate")


def _plots(r: Report) -> dict[str, bytes]:
    """PNG bytes of the report's plots, keyed by file stem: energy per layer (SNN vs ANN), firing rate per
    layer against the break-even rate, spikes over time."""
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
    snn_colour, ann_colour, be_colour = "#3b7dd8", "#e07b39", "#c0392b"

    fig = Figure(figsize=(6.0, 3.3))
    ax = fig.add_subplot()
    names = [x.name for x in r.layers]
    idx = np.arange(len(names))
    w = 0.4
    ax.bar(idx - w / 2, [x.snn for x in r.layers], w, label=f"SNN [{r.profile.name}]", color=snn_colour)
    if any(x.ann is not None for x in r.layers):
        ax.bar(idx + w / 2, [x.ann or 0.0 for x in r.layers], w,
               label=f"ANN twin [{r.ann_profile.name if r.ann_profile else ''}]", color=ann_colour)
    ax.set_xticks(idx, names, rotation=30, ha="right", fontsize=8)
    if any(x.snn > 0 for x in r.layers) or any((x.ann or 0) > 0 for x in r.layers):
        ax.set_yscale("log")
    ax.set_ylabel("J / inference")
    total = f"SNN {_fmt_energy(r.snn_energy.total)}" + (f" vs ANN {_fmt_energy(r.ann_energy)}" if r.ann_energy else "")
    ax.set_title(f"Energy per layer ({total})", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    out["energy_per_layer"] = png(fig)

    fig = Figure(figsize=(5.2, 3.3))
    ax = fig.add_subplot()
    top = 0.05
    lines = []  # (y, text, colour, style): labelled on the plot, no legend to hide them
    if spiking:
        rates = [x.firing_rate for x in spiking]
        ax.bar(range(len(spiking)), rates, color=snn_colour)
        ax.set_xticks(range(len(spiking)), [x.name for x in spiking], rotation=30, ha="right", fontsize=8)
        top = max(top, 1.2 * max(rates))
        lines.append((c.firing_rate, f"observed mean {c.firing_rate:.3g}", "#444", ":"))
    else:
        ax.text(0.5, 0.5, "no spiking layers", ha="center", va="center", transform=ax.transAxes)
    be = _break_even_rate(r)
    if be is not None and 0.0 <= be <= 1.0:
        top = max(top, 1.2 * be)
        lines.append((be, f"break-even {be:.3g}: the SNN is cheaper below", be_colour, "--"))
    elif be is not None:
        note = ("break-even above 1: the SNN is cheaper at every rate" if be > 1
                else "break-even below 0: the SNN costs more even when silent")
        ax.text(0.5, 0.95, note, ha="center", va="top", transform=ax.transAxes, color=be_colour, fontsize=8)
    top = min(top, 1.05)
    for y, text, colour, style in lines:
        ax.axhline(y, color=colour, ls=style, lw=1.5)
        ax.text(0.99, y + 0.012 * top, text, ha="right", va="bottom", color=colour, fontsize=8,
                transform=ax.get_yaxis_transform(), bbox={"facecolor": "white", "edgecolor": "none", "pad": 1, "alpha": 0.8})
    ax.set_ylim(0, top)
    ax.set_ylabel("spikes / neuron / step")
    ax.set_title("Firing rate per layer vs break-even rate", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    out["firing_rate"] = png(fig)

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
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;padding:10px 16px;max-width:1400px;
color:#222;font-size:14px}
h1{font-size:1.35em;margin:.1em 0}h2{font-size:1.1em;margin:1.4em 0 .4em;border-bottom:1px solid #ddd}
.sub{color:#555;margin:.1em 0 .6em}
.cards{display:flex;gap:10px;margin:.4em 0}
.card{flex:1;border:1px solid #dde3ea;border-radius:6px;padding:6px 10px;background:#f8fafc}
.card .k{font-size:.8em;color:#555}.card .v{font-size:1.35em;font-weight:600}.card .v small{font-size:.6em;color:#555}
.good{color:#1e7b34}.bad{color:#b03a2e}
.dash{display:grid;grid-template-columns:1.15fr 1fr .9fr;gap:12px;align-items:start;margin-top:8px}
.dash figure{margin:0}.dash img{width:100%;height:auto;display:block}
#assumptions{border:1px solid #dde3ea;border-radius:6px;padding:6px 10px;font-size:.82em;background:#fcfcfd}
#assumptions h2{margin:.1em 0 .3em;font-size:1.05em;border:0}
#assumptions table{width:100%;font-size:1em;table-layout:fixed}
#assumptions td{padding:.15em .3em}
#assumptions td.src{white-space:nowrap;overflow:hidden;text-overflow:ellipsis;color:#555}
#assumptions ul{margin:.3em 0;padding-left:1.1em}#assumptions li{margin:.15em 0}
table{border-collapse:collapse;font-size:.92em;margin:.4em 0}
th,td{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#f3f5f8}td:nth-child(n+3){font-variant-numeric:tabular-nums}
.plots img{max-width:49%;margin:.3em 0}
.verdict{background:#f6f8e8;padding:.45em .7em;border-left:4px solid #9ab33a;margin:.6em 0}
.note{color:#555;font-size:.9em}
"""

# nothing in the page may load from anywhere: the plots are data: URLs, the style is inline
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _card(label: str, value: str, small: str = "", cls: str = "") -> str:
    small = f" <small>{html.escape(small)}</small>" if small else ""
    return (f'<div class="card"><div class="k">{html.escape(label)}</div>'
            f'<div class="v {cls}">{html.escape(value)}{small}</div></div>')


def _cards(r: Report) -> str:
    s = r.summary()
    cards = [_card("SNN energy / inference", _fmt_energy(s["snn_energy_j"]), r.profile.name)]
    if r.ann_energy is not None:
        cards.append(_card("ANN twin energy / inference", _fmt_energy(r.ann_energy),
                           r.ann_profile.name if r.ann_profile else ""))
    if r.ratio is not None:
        cards.append(_card("ANN / SNN energy", f"{r.ratio:.3g}x", "SNN saves" if r.ratio > 1 else "SNN costs more",
                           "good" if r.ratio > 1 else "bad"))
    be = _break_even_rate(r)
    rate = f"{s['firing_rate']:.3g}"
    if be is not None and be < 0:
        cards.append(_card("Mean firing rate / break-even rate", f"{rate} / none", "never cheaper", "bad"))
    elif be is not None and be > 1:
        cards.append(_card("Mean firing rate / break-even rate", f"{rate} / none", "always cheaper", "good"))
    elif be is not None:
        cards.append(_card("Mean firing rate / break-even rate", f"{rate} / {be:.3g}",
                           "below" if s["firing_rate"] < be else "above", "good" if s["firing_rate"] < be else "bad"))
    else:
        cards.append(_card("Firing rate (spikes/neuron/step)", rate))
    if s["accuracy"] is not None:
        cards.append(_card("Accuracy", f"{100 * s['accuracy']:.2f} %"))
    return f'<div class="cards">{"".join(cards)}</div>'


_SNN_CONSTANTS = ("ac", "mac", "neuron_update", "spike")  # what E_snn charges (energy/model.py)
_ANN_CONSTANTS = ("mac", "flop")  # what E_ann charges


def _assumptions(r: Report) -> str:
    """The energy model's assumptions and the constants it used, compact enough to sit beside the plots."""
    rows = []
    profiles = [r.profile] + ([r.ann_profile] if r.ann_profile and r.ann_profile.name != r.profile.name else [])
    for p in profiles:
        snn = p.name == r.profile.name
        ann = r.ann_profile is not None and r.ann_profile.name == p.name
        role = " and ".join(x for x, used in (("SNN", snn), ("ANN twin", ann)) if used)
        keys = set(_SNN_CONSTANTS if snn else ()) | set(_ANN_CONSTANTS if ann else ())
        rows.append(f'<tr><th colspan="3">profile {html.escape(p.name)} (prices the {role})</th></tr>')
        for key, c in p.constants.items():
            if key not in keys:
                continue
            src = ("estimate: " if c.estimate else "") + c.source + (f" ({c.note})" if c.note else "")
            rows.append(f"<tr><td>{html.escape(key)}</td><td>{html.escape(f'{c.value:g} {c.unit}')}</td>"
                        f"<td class=\"src\" title=\"{html.escape(src)}\">{html.escape(src)}</td></tr>")
    table = ('<table><colgroup><col style="width:27%"><col style="width:17%"><col></colgroup>'
             f"<tbody>{''.join(rows)}</tbody></table>")
    items = ["SNN per inference: SOPs &times; ac + analog MACs &times; mac + neuron updates &times; neuron_update + "
             "spikes &times; spike, counted from the recorded spikes (exact fan-out)"]
    if r.ann is not None:
        items.append(f"ANN twin: every neuron a ReLU, {r.ann_steps} forward pass{'es' * (r.ann_steps > 1)} per "
                     "inference: MACs &times; mac + element-wise FLOPs &times; flop (ONNX count)")
    if r.break_even:
        items.append("Break-even: " + html.escape(r.break_even["model"]))
    items += [html.escape(p.description) for p in profiles if p.description]
    return (f'<aside id="assumptions"><h2>Assumptions</h2>{table}'
            f"<ul>{''.join(f'<li>{i}</li>' for i in items)}</ul></aside>")


def _img(stem: str, data: bytes, **attrs) -> str:
    extra = "".join(f' {k}="{html.escape(v)}"' for k, v in attrs.items())
    return f'<img alt="{html.escape(stem)}"{extra} src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}">'


def render_html(r: Report, plots: dict[str, bytes]) -> str:
    """The report as one self-contained HTML page (plots embedded as base64 PNG, nothing loaded from elsewhere).

    The top of the page (a laptop screen's worth) holds the headline energies, the SNN vs ANN energy
    per layer, the firing rate per layer against the break-even rate, and the energy model's
    assumptions; the full tables follow.
    """
    s = r.summary()
    facts = [f"simulated on {r.target}" if r.target else "",
             f"{s['time_steps']} steps of {s['dt_s']:.3g} s", f"{_fmt(s['samples'])} samples",
             "all figures per inference (one sample)"]
    sub = " &middot; ".join(html.escape(f) for f in facts if f)
    verdict = ""
    if r.break_even:
        verdict = (f'<p class="verdict"><b>Break-even:</b> {html.escape(r.break_even["verdict"])}.</p>')
    dash = ""
    if "energy_per_layer" in plots and "firing_rate" in plots:
        dash = ('<div class="dash">'
                f'<figure id="energy-per-layer">{_img("energy_per_layer", plots["energy_per_layer"])}</figure>'
                f'<figure id="firing-rate">{_img("firing_rate", plots["firing_rate"])}</figure>'
                f"{_assumptions(r)}</div>")
    others = "".join(_img(stem, data) for stem, data in plots.items() if stem not in ("energy_per_layer", "firing_rate"))
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in r.notes)
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{_CSP}\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{html.escape(_title(r))}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(_title(r))}</h1><p class=\"sub\">{sub}</p>"
        f"{_cards(r)}{dash}{verdict}"
        f"<h2>Summary</h2>{_html_table(('Figure', 'Value'), _summary_rows(r))}"
        f"<h2>SNN energy by operation</h2>{_html_table(('Part', 'Energy'), _breakdown_rows(r))}"
        f"<h2>Per layer</h2>{_html_table(_LAYER_HEAD, _layer_rows(r))}"
        + (f"<h2>Plots</h2><div class=\"plots\">{others}</div>" if others else "")
        + "<h2>Energy constants</h2>"
        f"{_html_table(('Profile', 'Constant', 'Value', 'Estimate', 'Role', 'Source'), _constant_rows(r))}"
        + (f"<h2>Notes</h2><ul>{notes}</ul>" if notes else "")
        + f"<p class=\"note\">spikesmith energy report, schema version {r.schema_version}.</p>"
        "</body></html>\n"
    )


PLOTS = ("energy_per_layer", "firing_rate", "spikes_over_time")
REPORT_FILES = ("report.json", "report.md", "report.html") + tuple(f"{stem}.png" for stem in PLOTS)


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
