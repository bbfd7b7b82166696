"""genie-fewshot: generative hard-negative augmentation (GeNIe) for episodic few-shot benchmarks."""

from __future__ import annotations

__version__ = "0.1.0"

from genie_plugin import _quiet

_quiet.install()  # before anything imports diffusers

__all__ = ["__version__", "create_strategy", "list_strategies", "load_generator"]


def __getattr__(name: str):
    # Lazy: importing the package must not import torch/diffusers (fast CLI startup).
    if name in ("create_strategy", "list_strategies"):
        from genie_plugin import registry

        return getattr(registry, name)
    if name == "load_generator":
        from genie_plugin.diffusion.loading import load_generator

        return load_generator
    raise AttributeError(name)
