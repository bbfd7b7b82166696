"""The schedule plan: which timesteps each item runs, when it joins, which UNet rows are guided.

One pure description of a batched GeNIe run that the sampler loop steps through and that every
cost count (progress totals, UNet rows, a strategy's planned image-steps) reads, so they cannot
drift apart. Items are grouped by the index at which they join the run's timestep list
(img2img's rule, :func:`~genie_plugin.core.schedule.start_index`); under ``max_item_steps`` a
group runs an evenly thinned subset of its tail. Groups are aligned to *finish* together: a
group with fewer steps joins the shared clock later.

Two meanings of r (``levels``): diffusers' strength (r picks a start *step*: on a 4-step model
r 0.5…0.9 collapse onto two steps), or the start noise *level* itself — the paper's
``t = T·r`` for ε/v models, σ = r for flow models — so every r starts from its own level and
then follows the run's timesteps below it.
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
    thinned: bool  # its own schedule (a thinned tail, or a start level), not the tail itself
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
    #: img2img's start rule of the family: "sd" skips ``N − int(N·r)`` steps, "flow" (SD3,
    #: Flux) ``int(N − N·r)``
    start_rule: str = "sd"
    #: r is the start noise level (``T·r`` for ε/v models, σ·T for flow models), not strength
    levels: bool = False
    num_train_timesteps: int = 1000
    #: timesteps are continuous (flow models' σ·T): custom lists keep fractions
    continuous: bool = False

    def start(self, ratio: float) -> int:
        """Index into ``timesteps`` at which an item of noise ratio ``ratio`` joins (r = 1: 0);
        in level mode, the index of the first run timestep below its start level."""
        if ratio >= 1.0:
            return 0
        if self.levels:
            t0 = self.start_timestep(ratio)
            return next((i for i, t in enumerate(self.timesteps) if float(t) < t0),
                        len(self.timesteps))  # fmt: skip
        if self.start_rule == "flow":
            from genie_plugin.core.schedule import validate_ratio

            r = validate_ratio(ratio)
            return int(max(self.steps - self.steps * r, 0)) * self.order
        return start_index(self.steps, ratio, self.order)

    def _own_level(self, ratio: float) -> bool:
        """Level mode, and not pure noise: the item starts at ``start_timestep``."""
        return self.levels and ratio < 1.0

    def start_timestep(self, ratio: float) -> float:
        """Level mode: the timestep an item of ratio r starts from (``T·r``, integral for
        discrete models, at most the last training timestep)."""
        t = self.num_train_timesteps * float(ratio)
        return t if self.continuous else float(min(round(t), self.num_train_timesteps - 1))

    def is_thinned(self, ratio: float) -> bool:
        if self._own_level(ratio):
            return True
        n = len(self.timesteps) - self.start(ratio)
        return len(thinned_indices(n, self.max_item_steps)) < n

    def drops_steps(self, ratio: float) -> bool:
        """Whether ``max_item_steps`` leaves out any of this ratio's timesteps."""
        n = len(self.timesteps) - self.start(ratio) + int(self._own_level(ratio))
        return len(thinned_indices(n, self.max_item_steps)) < n

    def item_timesteps(self, ratio: float) -> tuple[float, ...]:
        """The timesteps an item of this ratio steps through (custom ones as integers on
        discrete models: the list its own scheduler is given)."""
        tail = self.timesteps[self.start(ratio) :]
        if self._own_level(ratio):
            tail = (self.start_timestep(ratio), *tail)
        keep = thinned_indices(len(tail), self.max_item_steps)
        if len(keep) == len(tail) and not self._own_level(ratio):
            return tuple(tail)
        return tuple(self._custom(tail[j]) for j in keep)

    def _custom(self, t: float) -> float:
        return float(t) if self.continuous else float(int(t))

    def guided(self, t: float) -> bool:
        """Whether the UNet runs the unconditional row too at timestep ``t``."""
        return self.guidance_floor is not None and float(t) >= self.guidance_floor

    def groups(self, ratios: Sequence[float]) -> list[GroupPlan]:
        """The batch's join groups in order of start, with their join clocks."""
        by_start: dict[int, list[int]] = {}
        # level mode: one group per distinct start level (its key orders by level, high first)
        key = self._level_key(ratios) if self.levels else self.start
        for i, r in enumerate(ratios):
            by_start.setdefault(key(r), []).append(i)
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

    def _level_key(self, ratios: Sequence[float]):
        levels = sorted({float(r) for r in ratios}, reverse=True)
        rank = {r: i for i, r in enumerate(levels)}
        return lambda r: rank[float(r)]

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
