"""Confidence intervals for episodic accuracy (reference.md: mean ± 1.96·std/√N)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def mean_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width 1.96·std/√N (population std, as numpy's default in the papers)."""
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / n
    return mean, 1.96 * math.sqrt(var) / math.sqrt(n)


def paired_diff_ci95(values: Sequence[float], baseline: Sequence[float]) -> tuple[float, float]:
    """Mean of per-episode differences and its 1.96·std/√N half-width.

    Why paired: every strategy is scored on the same episodes, so episode difficulty cancels in
    the difference; its interval is much tighter than comparing two unpaired intervals.
    """
    if len(values) != len(baseline):
        raise ValueError(f"paired values need equal lengths ({len(values)} vs {len(baseline)})")
    return mean_ci95([a - b for a, b in zip(values, baseline, strict=True)])
