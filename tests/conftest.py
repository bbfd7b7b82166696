"""Shared fixtures: the seeded tiny model (built from configs, cached per session), images."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    # Never touch the user's cache or the network from tests.
    os.environ.setdefault("GENIE_CACHE_DIR", str(tmp_path_factory.mktemp("genie-cache")))
    os.environ["HF_HUB_OFFLINE"] = "1"
    yield


@pytest.fixture(scope="session")
def tiny_gen():
    from genie_plugin.diffusion import SamplerConfig, load_generator

    return load_generator("tiny-random", device="cpu", sampler=SamplerConfig(steps=10))


def make_image(seed: int, size: int = 40, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size, size + 6, 3), dtype=np.uint8)
    return Image.fromarray(arr).convert(mode)


def assert_same_pixels(a, b) -> None:
    """Equal up to float reduction order: batch composition changes conv/GEMM blocking, which
    can move a pixel across a uint8 rounding boundary (PyTorch is not batch-invariant)."""
    a = np.asarray(a, dtype=np.int16)
    b = np.asarray(b, dtype=np.int16)
    assert a.shape == b.shape
    d = np.abs(a - b)
    assert d.max() <= 1, f"max pixel difference {d.max()}"
    assert (d > 0).mean() < 0.01, f"{(d > 0).mean():.2%} of pixels differ"


@pytest.fixture
def images():
    return [make_image(i) for i in range(4)]


@pytest.fixture(autouse=True)
def _no_global_rng_draws():
    """Fail any test whose code draws from torch's or numpy's global RNG.

    (Python's ``random`` is left out: Click/rich draw from it for temp names and spinners.)
    """
    import torch

    t_state = torch.get_rng_state()
    n_state = np.random.get_state()[1].copy()
    yield
    assert torch.equal(torch.get_rng_state(), t_state), "torch global RNG was drawn from"
    assert np.array_equal(np.random.get_state()[1], n_state), "numpy global RNG was drawn from"
