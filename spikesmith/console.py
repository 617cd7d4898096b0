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
        self._bar = None

    def line(self, text: str) -> None:
        self._close_bar()
        if not self.quiet:
            print(text, file=self.stream, flush=True)

    def generation(self, info: dict) -> None:
        """One generation of an evolution run: generation i/n, best and mean per objective, ETA.

        On a terminal a rich progress bar is updated in place; otherwise one plain line per generation.
        """
        if self.quiet:
            return
        gen, n = int(info["generation"]), int(info.get("generations", 0))
        objs = "; ".join(f"{k} best {_num(v['best'])} mean {_num(v['mean'])}"
                         for k, v in (info.get("objectives") or {}).items())
        text = f"generation {gen}/{n}: {objs} ({info.get('evaluated', 0)} evaluated, ETA {_eta(info.get('eta'))})"
        if not self.tty:
            print(f"[{time.perf_counter() - self._t0:6.1f}s] evolve  {text}", file=self.stream, flush=True)
            return
        from rich.console import Console as RichConsole
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        if self._bar is None:
            self._bar = Progress(TextColumn("evolve"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.description}"), console=RichConsole(file=self.stream),
                                 transient=False)
            self._bar.start()
            self._task = self._bar.add_task("", total=n + 1)
        self._bar.update(self._task, completed=gen + 1, total=n + 1, description=text)
        if gen >= n:
            self._close_bar()

    def _close_bar(self) -> None:
        if getattr(self, "_bar", None) is not None:
            self._bar.stop()
        self._bar = None

    def progress(self, stage: str, info: dict) -> None:
        """Render one progress event from the API."""
        el = time.perf_counter() - self._t0
        if stage == "evolve":
            self.generation(info)
            return
        if stage == "train":
            self.line(f"[{el:6.1f}s] train   epoch {info['epoch']}/{info.get('epochs', '?')}: loss {info['loss']:.3f}, "
                      f"train {info['train_accuracy']:.3f}, test {info['test_accuracy']:.3f}, "
                      f"{info['samples_per_s']:.0f} samples/s")
        elif stage == "note":
            self.line(f"note: {info['text']}")
        elif stage == "stage":
            rest = ", ".join(f"{k}={v}" for k, v in info.items() if k != "done")
            self.line(f"[{el:6.1f}s] done    {info['done']}: {rest}")
        else:
            rest = ", ".join(f"{k}={v}" for k, v in info.items())
            self.line(f"[{el:6.1f}s] {stage}: {rest}")


def _num(v) -> str:
    """A number in 4 significant digits (large counts without decimals)."""
    v = float(v)
    return f"{v:,.0f}" if abs(v) >= 1e4 else f"{v:.4g}"


def _eta(seconds) -> str:
    if seconds is None:
        return "?"
    s = int(round(float(seconds)))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
