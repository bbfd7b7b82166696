"""``strong``: the traditional strong-augmentation baseline (reference.md): weak views plus colour
jitter, grayscale, blur and vertical flip, 5 per real support image; nothing generated."""

from __future__ import annotations

from dataclasses import dataclass

from genie_plugin.strategies.base import StrategyConfig
from genie_plugin.strategies.baselines import NoneStrategy


@dataclass(frozen=True, kw_only=True)
class StrongConfig(StrategyConfig):
    pass


class StrongStrategy(NoneStrategy):
    """Strong augmentation of the real support images (SimCLR-style colour + blur + flips)."""

    name = "strong"
    config_cls = StrongConfig
    augment_real = True
    view = "strong"
