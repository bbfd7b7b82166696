"""One rich progress-bar layout for the CLI and the training script."""

from __future__ import annotations


def make_progress(middle: str = "{task.fields[info]}", **kwargs):
    """Description, bar, done/total, ``middle`` text, elapsed, remaining."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(middle),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        **kwargs,
    )
