"""What a graph means when it runs: its time step and its neurons' reset rule.

NIR stores neither a time step nor how a neuron resets. spikesmith writes both into the graph
metadata when it exports; for other graphs they come from the options given, a recognised exporter
convention (snnTorch's), or NIR's defaults, with a notice saying which.
"""

from __future__ import annotations

import numpy as np

from spikesmith.errors import InputError


def resolve_dt(graph, dt: float | None) -> tuple[float, str | None]:
    """The time step to simulate with: explicit, else the graph's stored dt, else the dt of the
    convention the graph was exported in (snnTorch's), else 1e-3 with a notice."""
    from spikesmith.compile.conventions import snntorch_export_dt
    from spikesmith.compile.graph import DEFAULT_DT, graph_dt

    implied = snntorch_export_dt(graph)
    if dt is not None:
        if not np.isfinite(dt) or dt <= 0:
            raise InputError(f"--dt must be a positive number of seconds, got {dt}")
        if implied is not None and not np.isclose(dt, implied, rtol=1e-6):
            return float(dt), (f"the graph's parameters follow snnTorch's export at dt = {implied:g} s; at dt = {dt:g} s "
                               "its time constants differ from the trained network's")
        return float(dt), None
    stored = graph_dt(graph)
    if stored is not None:
        return stored, None
    if implied is not None:
        return implied, f"the graph follows snnTorch's export convention (r = tau/dt, w_in = tau_syn/dt): using dt = {implied:g} s"
    return DEFAULT_DT, f"the graph stores no time step; using dt = {DEFAULT_DT:g} s (pass --dt to choose)"


def resolve_reset(graph, reset: str | None = None, reset_timing: str | None = None):
    """The neurons' reset rule: explicit choices, else the graph's stored rule, else the rule of the
    convention it was exported in (snnTorch's delayed reset), else NIR's. Returns (ResetRule, notice)."""
    from spikesmith.compile.conventions import snntorch_export_dt
    from spikesmith.compile.graph import RESET_MODES, RESET_TIMINGS, ResetRule, graph_reset

    if reset is not None and reset not in RESET_MODES:
        raise InputError(f"--reset must be one of {', '.join(RESET_MODES)}, got {reset!r}")
    if reset_timing is not None and reset_timing not in RESET_TIMINGS:
        raise InputError(f"--reset-timing must be one of {', '.join(RESET_TIMINGS)}, got {reset_timing!r}")
    stored = graph_reset(graph)
    snntorch = stored is None and snntorch_export_dt(graph) is not None
    mode = reset or (stored.mode if stored else "value")
    timing = reset_timing or (stored.timing if stored else ("delayed" if snntorch else "immediate"))
    notes = []
    if snntorch and reset_timing is None:
        notes.append("snnTorch's neurons reset one step after they fire; running with that delayed reset "
                     "(--reset-timing immediate for NIR's reset)")
    if snntorch and reset is None:
        notes.append("NIR cannot record snnTorch's reset mechanism: resetting to v_reset (pass --reset subtract "
                     "if the network was trained with reset_mechanism='subtract')")
    return ResetRule(mode=mode, timing=timing), ("\n".join(notes) or None)


def resolve_semantics(graph, dt: float | None = None, reset: str | None = None, reset_timing: str | None = None):
    """(dt, ResetRule, notice) for running ``graph``: :func:`resolve_dt` and :func:`resolve_reset` together."""
    dt, n1 = resolve_dt(graph, dt)
    rule, n2 = resolve_reset(graph, reset, reset_timing)
    return dt, rule, "\n".join(n for n in (n1, n2) if n) or None
