"""`compare`'s progress: runs done of the total, each running run's step and last held-out
accuracy, elapsed time and an estimate of what is left.

Run processes send their step through a queue (:class:`ProgressCallback`), or, for a DDP run (a
command line of its own, not a child of the comparison), through a small file its rank 0 rewrites
(:class:`ProgressFile`); the parent draws
:class:`CompareProgress` with rich on a terminal, else as a plain line at most every
`every_s` seconds and whenever a run ends (logs and CI stay readable).
"""

from __future__ import annotations

import sys
import time

import lightning as L


class ProgressFile:
    """A queue's `put_nowait` and a reader over one JSON file: the last (key, step, accuracy) put,
    replaced whole (`harness.paths.write_text_atomic`), so a reader never sees half of it."""

    def __init__(self, path):
        from pathlib import Path

        self.path = Path(path)

    def put_nowait(self, item) -> None:
        import json

        from harness.paths import write_text_atomic

        key, step, accuracy = item
        write_text_atomic(self.path, json.dumps({"key": list(key), "step": step, "accuracy": accuracy}))

    def read(self):
        """The last item put, or None (nothing yet, or a file being replaced this instant)."""
        import json

        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return tuple(data["key"]), data["step"], data["accuracy"]


class ProgressCallback(L.Callback):
    """In a run's process: after every step, (key, step, last held-out accuracy) to the queue
    (or to a :class:`ProgressFile`)."""

    def __init__(self, queue, key: tuple[str, int]):
        self.queue, self.key = queue, key

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if not trainer.is_global_zero:
            return
        from harness.callbacks import EvalCallback

        curve = next((cb.recorder.eval_curve for cb in trainer.callbacks if isinstance(cb, EvalCallback)), [])
        accuracy = curve[-1]["eval/accuracy"] if curve else None
        try:
            self.queue.put_nowait((self.key, module.rl_step, accuracy))
        except Exception:  # a full or closed queue never stops training
            pass


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class CompareProgress:
    """The grid's state. `steps`: each pending run's planned steps (its `max_steps`; a budget may
    stop it earlier), by (algorithm, seed); `skipped`: runs finished before this command."""

    def __init__(self, steps: dict[tuple[str, int], int], skipped: int = 0, queue=None, log=print,
                 terminal: bool | None = None, every_s: float = 30.0):
        self.steps, self.skipped, self.queue, self.log, self.every_s = dict(steps), skipped, queue, log, every_s
        self.total = len(steps) + skipped
        self.running: dict[tuple[str, int], tuple[int, float | None]] = {}
        self.files: dict[tuple[str, int], ProgressFile] = {}  # runs that report through a file (DDP)
        self.done: set = set()
        self.started = time.monotonic()
        self._printed = -float("inf")
        self.terminal = sys.stdout.isatty() if terminal is None else terminal
        self._live = None

    def __enter__(self):
        if self.terminal:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(self._table(), console=Console(), refresh_per_second=2, transient=False)
            self._live.__enter__()
            self.log = self._live.console.print
        return self

    def __exit__(self, *exc):
        if self._live is not None:
            self._live.update(self._table())
            self._live.__exit__(*exc)
        return False

    def start(self, key: tuple[str, int]) -> None:
        self.running[key] = (0, None)
        self.refresh()

    def follow(self, key: tuple[str, int], path) -> None:
        """Read `key`'s steps from the :class:`ProgressFile` at `path` (a run started as a command line)."""
        self.files[key] = ProgressFile(path)

    def finish(self, key: tuple[str, int]) -> None:
        self.running.pop(key, None)
        self.files.pop(key, None)
        self.done.add(key)
        self.refresh(force=True)

    def poll(self) -> None:
        """Take every message waiting in the queue and the followed files' last ones, then redraw."""
        messages = []
        while self.queue is not None:
            try:
                messages.append(self.queue.get_nowait())
            except Exception:  # queue.Empty, or a queue closed under us
                break
        messages += [m for m in (f.read() for f in self.files.values()) if m is not None]
        for key, step, accuracy in messages:
            if key in self.running:
                self.running[key] = (step, accuracy if accuracy is not None else self.running[key][1])
        self.refresh()

    def eta_s(self) -> float | None:
        """Seconds left at the rate of steps so far (finished runs count all their planned steps)."""
        planned = sum(self.steps.values())
        finished = sum(self.steps[k] for k in self.done if k in self.steps)
        progressed = finished + sum(min(step, self.steps.get(k, step)) for k, (step, _) in self.running.items())
        elapsed = time.monotonic() - self.started
        if progressed <= 0 or elapsed <= 0:
            return None
        return (planned - progressed) * elapsed / progressed

    def summary(self) -> str:
        done = len(self.done) + self.skipped
        parts = [f"{done}/{self.total} runs done"]
        for (algorithm, seed), (step, accuracy) in sorted(self.running.items()):
            acc = "" if accuracy is None else f", accuracy {accuracy:.3f}"
            parts.append(f"{algorithm} seed {seed} step {step}/{self.steps.get((algorithm, seed), '?')}{acc}")
        eta = self.eta_s()
        parts.append(f"elapsed {_clock(time.monotonic() - self.started)}"
                     + (f", ETA {_clock(eta)}" if eta is not None else ""))
        return "compare: " + "; ".join(parts)

    def _table(self):
        from rich.table import Table

        eta = self.eta_s()
        table = Table(title=f"compare: {len(self.done) + self.skipped}/{self.total} runs done, elapsed "
                            f"{_clock(time.monotonic() - self.started)}" + (f", ETA {_clock(eta)}" if eta is not None else ""),
                      title_justify="left")
        for column in ("run", "step", "last accuracy"):
            table.add_column(column)
        for (algorithm, seed), (step, accuracy) in sorted(self.running.items()):
            table.add_row(f"{algorithm} seed {seed}", f"{step}/{self.steps.get((algorithm, seed), '?')}",
                          "-" if accuracy is None else f"{accuracy:.3f}")
        return table

    def refresh(self, force: bool = False) -> None:
        if self._live is not None:
            self._live.update(self._table())
            return
        now = time.monotonic()
        if force or now - self._printed >= self.every_s:
            self._printed = now
            self.log(self.summary())
