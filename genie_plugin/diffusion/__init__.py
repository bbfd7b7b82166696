"""Model loading and the batched GeNIe sampler over diffusers components."""

from genie_plugin.diffusion.loading import BUILTIN_MODELS, DiffusionGenerator, load_generator
from genie_plugin.diffusion.sampler import SampleItem, SamplerConfig, sample

__all__ = [
    "BUILTIN_MODELS",
    "DiffusionGenerator",
    "SampleItem",
    "SamplerConfig",
    "load_generator",
    "sample",
]
