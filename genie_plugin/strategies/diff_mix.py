"""Diff-Mix (Wang et al., CVPR 2024): inter-class translation on a personalised model — another
class's image, noised to strength s and denoised under the target's learned word. GeNIe's
mechanism with fitted conditioning, which is why it is the closest peer.

After ``Zhicaiwww/Diff-Mix`` (``dreambooth-lora-mixup`` at s = 0.7, its main setting). Where we
deviate, and why: the personalisation is the episode's textual inversion alone (shared with
``da_fusion``: same settings, same fit), without their DreamBooth LoRA (a per-episode LoRA is
``datadream``'s fit); the label is the target's, hard, as for GeNIe, where they mix soft labels
(1 − s^γ, s^γ) — the frozen-backbone protocol here trains on hard labels except for MixUp's own
views; and the count is (N−1)·K per class, every other class's support image once, as GeNIe.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from genie_plugin.core.schedule import validate_ratio
from genie_plugin.strategies.base import DiffusionStrategy, Episode, GenerationSpec
from genie_plugin.strategies.da_fusion import TokenFitConfig, TokenFitMixin


@dataclass(frozen=True, kw_only=True)
class DiffMixConfig(TokenFitConfig):
    ratio: float = 0.7  # Diff-Mix's translation strength (mixup0.7)

    def __post_init__(self) -> None:
        super().__post_init__()
        validate_ratio(self.ratio)


class DiffMixStrategy(TokenFitMixin, DiffusionStrategy):
    """Every other class's support image translated towards each target under its learned
    word (once per ``count``)."""

    name = "diff_mix"
    config_cls = DiffMixConfig

    def plan(self, episode: Episode, rng: torch.Generator) -> list[GenerationSpec]:
        specs = []
        for copy in range(self.config.count):
            for c in episode.target_classes():
                prompt = self.token_prompt(episode, c)
                for src in episode.items_not_of(c):
                    spec = self.spec(episode, c, src, copy, ratio=self.config.ratio)
                    specs.append(replace(spec, prompt=prompt))
        return specs
