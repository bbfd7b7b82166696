"""``mixup``: MixUp baseline. Each weak view of a real support image gets one partner view;
λ ~ Beta(α, α); the mixed image carries a soft label, so the episode is scored with the
soft-label linear head (logistic regression's objective with soft targets)."""

from __future__ import annotations

from dataclasses import dataclass

from genie_plugin.errors import ConfigError
from genie_plugin.strategies.base import StrategyConfig
from genie_plugin.strategies.baselines import NoneStrategy


@dataclass(frozen=True, kw_only=True)
class MixConfig(StrategyConfig):
    alpha: float = 0.8  # λ ~ Beta(alpha, alpha), reference.md

    def __post_init__(self) -> None:
        if not self.alpha > 0:
            raise ConfigError(f"alpha must be > 0, got {self.alpha}")


class MixUpStrategy(NoneStrategy):
    """MixUp of weak views with soft labels."""

    name = "mixup"
    config_cls = MixConfig
    augment_real = True
    mix = "mixup"
