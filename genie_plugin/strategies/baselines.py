"""Non-generative baselines: ``none`` (each real support image once, unaugmented) and ``weak``
(5 weak-augmented views per real support image, as every generative strategy also uses)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genie_plugin.strategies.base import Episode, GenerationSpec, Strategy, StrategyConfig


@dataclass(frozen=True, kw_only=True)
class NoAugConfig(StrategyConfig):
    pass


class NoneStrategy(Strategy):
    """No augmentation: the real support images only, one unaugmented view each."""

    name = "none"
    config_cls = NoAugConfig
    generative = False
    sources = "none"
    augment_real = False

    def plan(self, episode: Episode, rng: torch.Generator) -> list[GenerationSpec]:
        return []

    def render(self, specs, ctx):
        return []


class WeakStrategy(NoneStrategy):
    """Weak augmentation (RandomResizedCrop + flip), 5 views per real support image."""

    name = "weak"
    augment_real = True
