"""The schedule plan: which timesteps each item runs, when it joins, which UNet rows are guided.

One pure description of a batched GeNIe run that the sampler loop steps through and that every
cost count (progress totals, UNet rows, a strategy's planned image-steps) reads, so they cannot
drift apart. Items are grouped by the index at which they join the run's timestep list
(img2img's rule, :func:`~genie_plugin.core.schedule.start_index`); under ``max_item_steps`` a
group runs an evenly thinned subset of its tail. Groups are aligned to *finish* together: a
group with fewer steps joins the shared clock later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from genie_plugin.core.schedule import start_index, thinned_indices


@dataclass(frozen=True)
class GroupPlan:
    """The items that join at ``start`` (an index into the run's timestep list)."""

    start: int
    items: tuple[int, ...]  # positions in the batch
    timesteps: tuple[float, ...]  # the timesteps the group steps through, in order
    thinned: bool  # a subset of the tail (its own scheduler), not the tail itself
    join: int  # the clock tick of its first step


@dataclass(frozen=True)
class SchedulePlan:
    """The run's timestep list and the rules that cut per-item schedules from it.

    ``timesteps``: the scheduler's full (time-shifted) list; ``order``: the solver's order
    (``scheduler.order``); ``guidance_floor``: classifier-free guidance runs at t >= this, None
    when the run is unguided.
    """

    timesteps: tuple[float, ...]
    steps: int
    order: int = 1
    max_item_steps: int | None = None
    guidance_floor: float | None = None

    def start(self, ratio: float) -> int:
        """Index into ``timesteps`` at which an item of noise ratio ``ratio`` joins (r = 1: 0)."""
        return 0 if ratio >= 1.0 else start_index(self.steps, ratio, self.order)

    def is_thinned(self, ratio: float) -> bool:
        n = len(self.timesteps) - self.start(ratio)
        return len(thinned_indices(n, self.max_item_steps)) < n

    def item_timesteps(self, ratio: float) -> tuple[float, ...]:
        """The timesteps an item of this ratio steps through (thinned ones as integers, the
        custom list its own scheduler is given)."""
        tail = self.timesteps[self.start(ratio) :]
        keep = thinned_indices(len(tail), self.max_item_steps)
        if len(keep) == len(tail):
            return tuple(tail)
        return tuple(float(int(tail[j])) for j in keep)

    def guided(self, t: float) -> bool:
        """Whether the UNet runs the unconditional row too at timestep ``t``."""
        return self.guidance_floor is not None and float(t) >= self.guidance_floor

    def groups(self, ratios: Sequence[float]) -> list[GroupPlan]:
        """The batch's join groups in order of start, with their join clocks."""
        by_start: dict[int, list[int]] = {}
        for i, r in enumerate(ratios):
            by_start.setdefault(self.start(r), []).append(i)
        firsts = {s: ratios[idx[0]] for s, idx in by_start.items()}
        steps = {s: self.item_timesteps(r) for s, r in firsts.items()}
        n_clock = max((len(t) for t in steps.values()), default=0)
        return [
            GroupPlan(
                start=s,
                items=tuple(idx),
                timesteps=steps[s],
                thinned=self.is_thinned(firsts[s]),
                join=n_clock - len(steps[s]),
            )
            for s, idx in sorted(by_start.items())
        ]

    def image_steps(self, ratios: Sequence[float]) -> int:
        """UNet image-steps the items run (one per item and step)."""
        return sum(len(self.item_timesteps(r)) for r in ratios)

    def unet_rows(self, ratios: Sequence[float]) -> int:
        """UNet batch rows the items run: one per image-step, plus the unconditional row at
        guided steps. The generation cost in UNet evaluations."""
        rows = {}
        for r in set(ratios):
            ts = self.item_timesteps(r)
            rows[r] = len(ts) + sum(1 for t in ts if self.guided(t))
        return sum(rows[r] for r in ratios)
