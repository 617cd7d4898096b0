"""The one object that draws progress: stderr, plain lines when not a terminal."""

from __future__ import annotations

import sys
import time


class Console:
    """Progress and summaries on stderr; library code reports through ``on_progress`` callbacks."""

    def __init__(self, stream=None, quiet: bool = False):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._t0 = time.perf_counter()

    def line(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.stream, flush=True)

    def progress(self, stage: str, info: dict) -> None:
        """Render one progress event from the API."""
        el = time.perf_counter() - self._t0
        if stage == "evolve":
            self.line(f"[{el:6.1f}s] evolve  generation {info['generation']}: best RDM score "
                      f"{info['best']:.4f}, mean {info['mean']:.4f} ({info['evaluated']} genomes evaluated)")
        elif stage == "train":
            self.line(f"[{el:6.1f}s] train   epoch {info['epoch']}/{info.get('epochs', '?')}: loss {info['loss']:.3f}, "
                      f"train {info['train_accuracy']:.3f}, test {info['test_accuracy']:.3f}, "
                      f"{info['samples_per_s']:.0f} samples/s")
        elif stage == "nas":
            keys = ("generation", "best_score", "mean_score", "front_size", "evaluated", "seconds")
            rest = ", ".join(f"{k}={info[k]:.4f}" if isinstance(info.get(k), float) else f"{k}={info[k]}"
                             for k in keys if k in info)
            self.line(f"[{el:6.1f}s] nas     {rest or info}")
        elif stage == "gee":
            keys = ("event", "stage", "generation", "individual", "fitness", "best_fitness", "accuracy",
                    "test_accuracy", "H_G", "D_X")
            rest = ", ".join(f"{k}={info[k]:.4f}" if isinstance(info.get(k), float) else f"{k}={info[k]}"
                             for k in keys if k in info)
            self.line(f"[{el:6.1f}s] gee     {rest}")
        elif stage == "note":
            self.line(f"note: {info['text']}")
        elif stage == "stage":
            rest = ", ".join(f"{k}={v}" for k, v in info.items() if k != "done")
            self.line(f"[{el:6.1f}s] done    {info['done']}: {rest}")
        else:
            rest = ", ".join(f"{k}={v}" for k, v in info.items())
            self.line(f"[{el:6.1f}s] {stage}: {rest}")
