"""GeNIe: a support image of class A, noised to r and denoised under class B's prompt.

The output keeps A's low-level context but shows B: a hard negative labelled B (paper §3.1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genie_plugin.core.affinity import SOURCE_MODES, ranked_classes
from genie_plugin.core.prompts import DEFAULT_PROMPT
from genie_plugin.core.schedule import validate_ratio
from genie_plugin.errors import ConfigError, check_int
from genie_plugin.strategies.base import (
    DiffusionStrategy,
    Episode,
    GenerationSpec,
    GenerativeConfig,
)


@dataclass(frozen=True, kw_only=True)
class GenieConfig(GenerativeConfig):
    ratio: float = 0.8  # paper's default noise ratio (reference.md)
    prompt: str = DEFAULT_PROMPT
    # which other classes' support images are edited: every other class ("all", the paper), or
    # the ``source_classes`` classes whose prototypes are nearest to / farthest from the
    # target's on the support set, their images repeated (own seeds) to the same count
    sources_by: str = "all"
    source_classes: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        validate_ratio(self.ratio)
        if self.sources_by not in SOURCE_MODES:
            raise ConfigError(
                f"sources_by = {self.sources_by!r}: choose one of {', '.join(SOURCE_MODES)}"
            )
        check_int(self.source_classes, "source_classes", minimum=1)

    def to_dict(self) -> dict:
        d = super().to_dict()
        if d.get("sources_by") == "all":  # configs recorded before these keys read the same
            d.pop("sources_by")
            if d.get("source_classes") == 1:
                d.pop("source_classes")
        return d


class GenieStrategy(DiffusionStrategy):
    """Every support image of the other N-1 classes, edited towards each target class (once
    per ``count``)."""

    name = "genie"
    config_cls = GenieConfig

    @property
    def needs_affinity(self) -> bool:
        return self.config.sources_by != "all"

    def plan(self, episode: Episode, rng: torch.Generator) -> list[GenerationSpec]:
        cfg = self.config
        if cfg.sources_by == "all":
            return [
                self.spec(episode, c, src, copy, ratio=cfg.ratio)
                for copy in range(cfg.count)
                for c in episode.target_classes()
                for src in episode.items_not_of(c)
            ]
        if episode.affinity is None:
            raise ConfigError(
                f"genie sources_by={cfg.sources_by} picks sources by the backbone's view of the "
                "support set: run it where a backbone is loaded (genie bench run / study, or "
                "get_tasksets(..., backbone=...))"
            )
        specs = []
        for c in episode.target_classes():
            picked = ranked_classes(episode.affinity, c, cfg.sources_by)[: cfg.source_classes]
            pool = [it for k in picked for it in episode.items_of(k)]
            n = episode.budget_per_class  # the reference count, so only the sources differ
            reps = -(-n // len(pool))
            for block in range(cfg.count):
                for j in range(n):
                    copy = block * reps + j // len(pool)  # own seed for every repeat
                    specs.append(self.spec(episode, c, pool[j % len(pool)], copy, ratio=cfg.ratio))
        return specs
