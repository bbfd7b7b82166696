"""One progress display for the CLI and the training script: a rich bar on a terminal, plain
lines in a log (CI, ``nohup``, a cluster job), where a live bar would print nothing until the
end. ``GENIE_PROGRESS_INTERVAL`` sets the seconds between plain lines (default 30)."""

from __future__ import annotations

import os
import sys
import time

from genie_plugin.sinks import terminal


def make_progress(middle: str = "{task.fields[info]}", **kwargs):
    """Description, bar, done/total, ``middle`` text, elapsed, remaining (a terminal), else a
    :class:`PlainProgress` with the same methods."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = kwargs.get("console") or Console(stderr=True)
    if not console.is_terminal:
        return PlainProgress(middle, stream=console.file)
    return Progress(
        TextColumn("{task.description}", style="bold", markup=False),  # names are text
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(middle),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        **kwargs,
    )


def progress_interval() -> float:
    """``GENIE_PROGRESS_INTERVAL``: seconds between plain progress lines (default 30)."""
    import math

    from genie_plugin.errors import ConfigError

    raw = os.environ.get("GENIE_PROGRESS_INTERVAL", "").strip()
    if not raw:
        return 30.0
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        raise ConfigError(
            f"GENIE_PROGRESS_INTERVAL={raw!r}: not a number of seconds >= 0; set e.g. 30 or unset it"
        )
    return value


class PlainProgress:
    """rich's ``Progress`` API (add_task, update, advance, context manager) as plain lines: one
    per task when it starts, at most every ``interval`` seconds while it runs, and when it ends."""

    def __init__(
        self, middle: str = "{task.fields[info]}", *, stream=None, interval: float | None = None
    ) -> None:
        self.stream = stream or sys.stderr
        if interval is None:
            interval = progress_interval()
        self.interval = interval
        self.middle = middle
        self.tasks: dict[int, dict] = {}

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc) -> None:
        for tid, t in self.tasks.items():
            if t["printed"] != (t["completed"], t["info"]) and t["completed"]:
                self._line(tid)

    def add_task(self, description: str, total: float | None = None, **fields) -> int:
        tid = len(self.tasks)
        self.tasks[tid] = {
            "description": description,
            "total": total,
            "completed": fields.pop("completed", 0),
            "info": fields.get("info", ""),
            "start": time.monotonic(),
            # -inf: the first update prints whatever the clock reads (monotonic() counts from
            # boot, so 0.0 kept a machine up for under `interval` seconds silent)
            "last": float("-inf"),
            "printed": None,
        }
        return tid

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def update(self, task_id: int, *, completed=None, advance=None, info=None, **_) -> None:
        t = self.tasks[task_id]
        if completed is not None:
            t["completed"] = completed
        if advance is not None:
            t["completed"] += advance
        if info is not None:
            t["info"] = info
        now = time.monotonic()
        done = t["total"] is not None and t["completed"] >= t["total"]
        if done or now - t["last"] >= self.interval:
            self._line(task_id)

    def _line(self, task_id: int) -> None:
        t = self.tasks[task_id]
        t["last"] = time.monotonic()
        t["printed"] = (t["completed"], t["info"])
        total = "?" if t["total"] is None else f"{t['total']:g}"
        elapsed = time.monotonic() - t["start"]
        info = f" {t['info']}" if t["info"] and "info" in self.middle else ""
        unit = "" if "info" in self.middle else f" {self.middle}".rstrip()
        print(
            f"{terminal(t['description'])} {t['completed']:g}/{total}{unit}{info} ({elapsed:.0f} s)",
            file=self.stream,
            flush=True,
        )
