"""Img2Img baseline: a class's own support image re-noised and denoised under its own prompt.

Paper's Img2Img^L (r = 0.3, ``img2img``) and Img2Img^H (r = 0.7, ``img2img_high``).
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
class Img2ImgConfig(GenerativeConfig):
    ratio: float = 0.3
    prompt: str = DEFAULT_PROMPT

    def __post_init__(self) -> None:
        super().__post_init__()
        validate_ratio(self.ratio)


class Img2ImgStrategy(DiffusionStrategy):
    """(N-1)·K outputs per class, cycling over the class's K support images with new seeds."""

    name = "img2img"
    sources = "same"
    config_cls = Img2ImgConfig

    def plan(self, episode: Episode, rng: torch.Generator) -> list[GenerationSpec]:
        specs = []
        for c in episode.target_classes():
            own = episode.items_of(c)
            if not own:
                continue
            for j in range(episode.budget_per_class * self.config.count):
                src, copy = own[j % len(own)], j // len(own)
                specs.append(self.spec(episode, c, src, copy, ratio=self.config.ratio))
        return specs


class Img2ImgHighStrategy(Img2ImgStrategy):
    """Img2Img^H: the same with r = 0.7."""

    name = "img2img_high"

    def __init__(self, config: Img2ImgConfig | None = None, **overrides) -> None:
        super().__init__(config if config is not None else Img2ImgConfig(ratio=0.7), **overrides)
