"""GeNIe: a support image of class A, noised to r and denoised under class B's prompt.

The output keeps A's low-level context but shows B: a hard negative labelled B (paper §3.1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genie_plugin.core.prompts import DEFAULT_PROMPT
from genie_plugin.core.schedule import validate_ratio
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

    def __post_init__(self) -> None:
        super().__post_init__()
        validate_ratio(self.ratio)


class GenieStrategy(DiffusionStrategy):
    """Every support image of the other N-1 classes, edited towards each target class (once
    per ``count``)."""

    name = "genie"
    config_cls = GenieConfig

    def plan(self, episode: Episode, rng: torch.Generator) -> list[GenerationSpec]:
        return [
            self.spec(episode, c, src, copy, ratio=self.config.ratio)
            for copy in range(self.config.count)
            for c in episode.target_classes()
            for src in episode.items_not_of(c)
        ]
