"""A generation budget over any strategy's plan: images per class, and a cap per task.

Every generative strategy plans (N−1)·K images per class (the reference's budget). A
meta-learning loop of 30-way tasks would generate 870 per class per task, so the caller may
ask for another count per class (fewer: a subset; more: further copies with their own seeds)
and cap a task's total. Pure: specs in, specs out, no I/O.

The subset is taken in a fixed order of the plan's per-item seeds (stable hashes), so a
smaller budget's images are a subset of a larger one's and hit the same cache entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from genie_plugin.errors import ConfigError


def check_budget(per_class: int | None, per_task: int | None, *, where: str = "") -> None:
    for name, value in (("per_class", per_class), ("per_task", per_task)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{where}{name}={value!r}: a count of images >= 0, or None")


def apply_budget(specs: Sequence, episode, *, per_class: int | None = None,
                 per_task: int | None = None) -> list:  # fmt: skip
    """``specs`` with ``per_class`` images for each class they target (None: as planned) and
    at most ``per_task`` in all (None: no cap), spread evenly over the classes."""
    check_budget(per_class, per_task)
    if per_class is None and per_task is None:
        return list(specs)
    by_class: dict[int, list] = {}
    for s in specs:
        by_class.setdefault(s.label, []).append(s)
    chosen: dict[int, list] = {}
    for label, group in by_class.items():
        ordered = sorted(group, key=lambda s: (s.seed, s.source_id or "", s.copy))
        n = len(group) if per_class is None else per_class
        if n <= len(ordered):
            chosen[label] = ordered[:n]
            continue
        stride = max(s.copy for s in group) + 1  # new copy numbers never repeat a planned one
        more = []
        for j in range(len(ordered), n):
            base = ordered[j % len(ordered)]
            copy = base.copy + (j // len(ordered)) * stride
            seed = episode.item_seed(label, base.source_id, copy)
            more.append(replace(base, copy=copy, seed=seed))
        chosen[label] = ordered + more
    if per_task is not None:
        capped: dict[int, list] = {label: [] for label in chosen}
        left = per_task
        depth = 0
        while left > 0 and any(depth < len(g) for g in chosen.values()):
            for label in sorted(chosen):
                if left and depth < len(chosen[label]):
                    capped[label].append(chosen[label][depth])
                    left -= 1
            depth += 1
        chosen = capped
    keep = {id(s) for g in chosen.values() for s in g}
    planned_ids = {id(s) for s in specs}
    planned = [s for s in specs if id(s) in keep]  # the plan's order, then the new copies
    extra = [s for g in chosen.values() for s in g if id(s) not in planned_ids]
    return planned + extra
