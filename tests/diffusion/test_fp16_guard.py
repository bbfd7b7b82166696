"""fp16 guard: an output with NaN/inf pixels is decoded again with an fp32 VAE and counted."""

import dataclasses
from types import SimpleNamespace

import numpy as np
import torch

from genie_plugin.diffusion.model import ModelHelpers
from genie_plugin.diffusion.sampler import SampleItem


class OverflowingVAE(torch.nn.Module):
    """Stands in for SD's VAE overflowing in half precision on one latent (item 1 -> NaN)."""

    def __init__(self, inner) -> None:
        super().__init__()
        self.inner, self.overflow = inner, True
        self.config = inner.config

    @property
    def dtype(self):
        return self.inner.dtype

    def encode(self, x):
        return self.inner.encode(x)

    def decode(self, z):
        out = self.inner.decode(z).sample.clone()
        if self.overflow and len(out) > 1:
            out[1] = float("nan")
        return SimpleNamespace(sample=out)

    def float(self):
        m = super().float()
        m.overflow = False  # the fp32 copy does not overflow
        return m


def test_nan_outputs_are_redecoded_in_fp32_and_counted(tiny_gen):
    gen = dataclasses.replace(tiny_gen, vae=OverflowingVAE(tiny_gen.vae), helpers=ModelHelpers())
    items = [SampleItem("a photo of a star.", 1.0, s) for s in (1, 2, 3)]
    # tiny_gen is shared by the session: another test may already have counted reruns on it
    before = tiny_gen.stats.get("vae_fp32_reruns", 0)
    guarded = gen.generate(items, max_batch=8)
    plain = tiny_gen.generate(items, max_batch=8)
    for a, b in zip(guarded, plain, strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert gen.stats["vae_fp32_reruns"] == 1
    assert tiny_gen.stats.get("vae_fp32_reruns", 0) == before  # nothing overflowed there


def test_the_fp32_vae_is_made_once_per_model_not_per_view(tiny_gen):
    """GeNIe-Ada makes a view per render (``with_sampler``): every view shares the one copy."""
    gen = dataclasses.replace(tiny_gen, vae=OverflowingVAE(tiny_gen.vae), helpers=ModelHelpers())
    items = [SampleItem("a photo of a star.", 1.0, s) for s in (1, 2)]
    gen.with_sampler(steps=3).generate(items, max_batch=8)
    first = gen.helpers.fp32_vae(gen.vae)
    gen.with_sampler(steps=4).generate(items, max_batch=8)
    assert gen.helpers.fp32_vae(gen.vae) is first
    assert gen.stats["vae_fp32_reruns"] == 2
