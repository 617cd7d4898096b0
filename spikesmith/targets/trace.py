"""The record of one simulation: every node's output at every time step."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, kw_only=True)
class Trace:
    """What a target computed for an input batch.

    Attributes:
        target: ``"norse"``, ``"lava-float"``, ``"lava-fixed"`` or ``"loihi"`` (the fixed-point engine).
        dt: time step in seconds used to discretise the graph.
        input: the input, shape ``(T, B, *input_shape)``.
        output: the graph output, shape ``(T, B, *output_shape)``.
        activity: output of every node of the (flattened) graph, keyed by node name,
            each ``(T, B, *node_output_shape)``: spikes (0/1) for spiking nodes, values
            for the others. Nodes inside nested subgraphs use ``"outer.inner"`` names.
        states: per population, its neuron state ``{"u": ..., "v": ...}`` each ``(T, B, N)`` at the end
            of every step (after the reset), when the run recorded it: integers for the fixed-point
            targets (Loihi units), thresholds for floating point.
        seconds: wall time of the simulation proper (compilation excluded).
        compile_seconds: wall time spent building/compiling the target network.
        meta: target-specific extras (e.g. Lava lags, quantisation info).
    """

    target: str
    dt: float
    input: np.ndarray
    output: np.ndarray
    activity: dict[str, np.ndarray]
    states: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    seconds: float = 0.0
    compile_seconds: float = 0.0
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.input.ndim < 2 or self.output.ndim < 2:
            raise ValueError("Trace input and output must be shaped (T, B, ...)")
        if self.input.shape[:2] != self.output.shape[:2]:
            raise ValueError(
                f"Trace input (T, B) {self.input.shape[:2]} differs from output {self.output.shape[:2]}"
            )
        if self.dt <= 0:
            raise ValueError(f"Trace dt must be positive, got {self.dt}")

    @property
    def steps(self) -> int:
        """Number of time steps T."""
        return int(self.input.shape[0])

    @property
    def batch(self) -> int:
        """Batch size B."""
        return int(self.input.shape[1])

    def per_sample_seconds(self) -> float:
        """Simulation wall time per sample (compilation excluded)."""
        return self.seconds / max(self.batch, 1)


def concat(traces: list[Trace]) -> Trace:
    """One Trace of the samples of ``traces`` (runs of one graph on consecutive chunks of a batch)."""
    t = traces[0]
    if len(traces) == 1:
        return t
    cat = lambda key: np.concatenate(key, axis=1)  # noqa: E731
    return Trace(target=t.target, dt=t.dt, input=cat([u.input for u in traces]), output=cat([u.output for u in traces]),
                 activity={k: cat([u.activity[k] for u in traces]) for k in t.activity},
                 states={n: {k: cat([u.states[n][k] for u in traces]) for k in s} for n, s in t.states.items()},
                 seconds=sum(u.seconds for u in traces), compile_seconds=sum(u.compile_seconds for u in traces),
                 meta=t.meta)


def head(t: Trace, n: int) -> Trace:
    """The first ``n`` samples of a trace."""
    return Trace(target=t.target, dt=t.dt, input=t.input[:, :n], output=t.output[:, :n],
                 activity={k: v[:, :n] for k, v in t.activity.items()},
                 states={p: {k: v[:, :n] for k, v in s.items()} for p, s in t.states.items()},
                 seconds=t.seconds, compile_seconds=t.compile_seconds, meta=t.meta)
