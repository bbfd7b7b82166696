"""Text2Image baseline: the target prompt alone, from pure noise (r = 1).

The reference code's "Text2Image" ran img2img at r = 0.8; this one really starts from noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genie_plugin.core.prompts import DEFAULT_PROMPT
from genie_plugin.strategies.base import (
    DiffusionStrategy,
    Episode,
    GenerationSpec,
    GenerativeConfig,
)


@dataclass(frozen=True, kw_only=True)
class Text2ImageConfig(GenerativeConfig):
    prompt: str = DEFAULT_PROMPT


class Text2ImageStrategy(DiffusionStrategy):
    """(N-1)·K images per class from its prompt, the same budget as GeNIe."""

    name = "text2image"
    sources = "none"
    config_cls = Text2ImageConfig

    def plan(self, episode: Episode, rng: torch.Generator) -> list[GenerationSpec]:
        return [
            self.spec(episode, c, None, copy, ratio=1.0)
            for c in episode.target_classes()
            for copy in range(episode.budget_per_class * self.config.count)
        ]
