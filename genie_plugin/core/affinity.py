"""Which classes an episode's backbone confuses: prototype similarity on the support set.

The *which sources* study (issue 31) asks whether GeNIe's hard negatives help more when their
sources come from the classes the backbone confuses most with the target. "Confused" is read
off the support set only (never the query labels): the cosine similarity of the classes'
prototypes (means of their L2-normalised support features). The ranking is a decision a last
bit could flip, so every sum is exactly rounded (:mod:`genie_plugin.core.ada`'s helpers) and
ties go to the lower class index.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from genie_plugin.core.ada import exact_dot, exact_mean_rows, exact_norm, unit_rows
from genie_plugin.errors import ConfigError

#: How GeNIe picks the other-class support images it edits (``sources`` in its config).
SOURCE_MODES = ("all", "nearest", "farthest")


def class_affinity(
    features, labels: Sequence[int], n_classes: int
) -> tuple[tuple[float, ...], ...]:
    """N×N cosine similarity of the class prototypes (support features averaged per class)."""
    x = unit_rows(np.asarray(features, dtype=np.float64))
    labels = list(labels)
    if len(labels) != len(x):
        raise ConfigError(f"{len(x)} support features for {len(labels)} labels")
    protos = []
    for c in range(n_classes):
        rows = [x[i] for i, lab in enumerate(labels) if lab == c]
        if not rows:
            raise ConfigError(f"class {c} has no support image to build its prototype from")
        protos.append(exact_mean_rows(np.stack(rows)))
    norms = [max(exact_norm(p), 1e-12) for p in protos]
    return tuple(
        tuple(exact_dot(protos[a], protos[b]) / (norms[a] * norms[b]) for b in range(n_classes))
        for a in range(n_classes)
    )


def ranked_classes(affinity, target: int, mode: str) -> list[int]:
    """The other classes ordered for ``mode``: ``nearest`` most similar to ``target`` first,
    ``farthest`` least similar first, ``all`` in class order; ties by class index."""
    if mode not in SOURCE_MODES:
        raise ConfigError(f"sources = {mode!r}: choose one of {', '.join(SOURCE_MODES)}")
    others = [c for c in range(len(affinity)) if c != target]
    if mode == "all":
        return others
    sign = -1.0 if mode == "nearest" else 1.0
    return sorted(others, key=lambda c: (sign * affinity[target][c], c))
