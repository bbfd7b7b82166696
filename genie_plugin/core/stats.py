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
