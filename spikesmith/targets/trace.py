"""The record of one simulation: every node's output at every time step."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, kw_only=True)
class Trace:
    """What a target computed for an input batch.

    Attributes:
        target: ``"norse"``, ``"lava-float"`` or ``"lava-fixed"``.
        dt: time step in seconds used to discretise the graph.
        input: the input, shape ``(T, B, *input_shape)``.
        output: the graph output, shape ``(T, B, *output_shape)``.
        activity: output of every node of the (flattened) graph, keyed by node name,
            each ``(T, B, *node_output_shape)``: spikes (0/1) for spiking nodes, values
            for the others. Nodes inside nested subgraphs use ``"outer.inner"`` names.
        seconds: wall time of the simulation proper (compilation excluded).
        compile_seconds: wall time spent building/compiling the target network.
        meta: target-specific extras (e.g. Lava lags, quantisation info).
    """

    target: str
    dt: float
    input: np.ndarray
    output: np.ndarray
    activity: dict[str, np.ndarray]
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
