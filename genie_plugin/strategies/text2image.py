"""Text2Image baseline: the target prompt alone, from pure noise (r = 1).

The reference code's "Text2Image" ran img2img at r = 0.8; this one really starts from noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genie_plugin.strategies.base import (
    DEFAULT_PROMPT,
    DiffusionStrategy,
    Episode,
    GenerationSpec,
    StrategyConfig,
    class_prompt,
)


@dataclass(frozen=True, kw_only=True)
class Text2ImageConfig(StrategyConfig):
    prompt: str = DEFAULT_PROMPT


class Text2ImageStrategy(DiffusionStrategy):
    """(N-1)·K images per class from its prompt, the same budget as GeNIe."""

    name = "text2image"
    sources = "none"
    config_cls = Text2ImageConfig

    def plan(self, episode: Episode, generator: torch.Generator) -> list[GenerationSpec]:
        specs = []
        for c in episode.target_classes():
            target = episode.class_names[c]
            for copy in range(episode.budget_per_class):
                specs.append(
                    GenerationSpec(
                        strategy=self.name,
                        dataset=episode.dataset,
                        episode=episode.index,
                        label=c,
                        target_class=target,
                        prompt=class_prompt(self.config.prompt, target),
                        seed=episode.item_seed(c, None, copy),
                        ratio=1.0,
                        copy=copy,
                    )
                )
        return specs
