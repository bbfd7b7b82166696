"""Model loading and the batched GeNIe sampler over diffusers components."""

from genie_plugin.diffusion.loading import DiffusionGenerator, load_generator, model_aliases
from genie_plugin.diffusion.sampler import SampleItem, sample
from genie_plugin.diffusion.settings import SamplerConfig

__all__ = [
    "DiffusionGenerator",
    "SampleItem",
    "SamplerConfig",
    "load_generator",
    "model_aliases",
    "sample",
]
