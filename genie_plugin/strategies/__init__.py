"""Augmentation strategies, one per file, each with a frozen ``<Name>Config``."""

from genie_plugin.strategies.base import (
    Episode,
    GeneratedImage,
    GenerationSpec,
    RenderContext,
    Strategy,
    StrategyConfig,
    SupportItem,
)

__all__ = [
    "Episode",
    "GeneratedImage",
    "GenerationSpec",
    "RenderContext",
    "Strategy",
    "StrategyConfig",
    "SupportItem",
]
