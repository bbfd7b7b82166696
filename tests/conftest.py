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


@pytest.fixture
def images():
    return [make_image(i) for i in range(4)]


@pytest.fixture(autouse=True)
def _no_global_rng_draws():
    """Fail any test whose code draws from torch's / numpy's / Python's global RNG."""
    import random

    import torch

    t_state = torch.get_rng_state()
    n_state = np.random.get_state()[1].copy()
    p_state = random.getstate()
    yield
    assert torch.equal(torch.get_rng_state(), t_state), "torch global RNG was drawn from"
    assert np.array_equal(np.random.get_state()[1], n_state), "numpy global RNG was drawn from"
    assert random.getstate() == p_state, "python global RNG was drawn from"
