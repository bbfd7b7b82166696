"""Traditional baselines: strong views, MixUp/CutMix soft labels and the soft-label head."""

import numpy as np
import pytest
import torch
from PIL import Image

from genie_plugin.fewshot.protocol import (
    logistic_regression_accuracy,
    mix_images,
    soft_label_accuracy,
    strong_view,
    weak_view,
)
from genie_plugin.registry import REGISTRY


def _img(colour, size=32):
    return Image.new("RGB", (size, size), colour)


def test_strong_view_is_seeded_and_stronger_than_weak():
    rng = np.random.default_rng(0)
    im = Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    a = strong_view(im, 32, torch.Generator().manual_seed(1))
    b = strong_view(im, 32, torch.Generator().manual_seed(1))
    assert np.array_equal(np.asarray(a), np.asarray(b))

    # colour statistics move under strong views (jitter/grayscale), barely under weak ones
    def spread(fn):
        g = torch.Generator().manual_seed(2)
        return np.std([np.asarray(fn(im, 32, g), dtype=float).mean((0, 1)) for _ in range(40)])

    assert spread(strong_view) > 2 * spread(weak_view)


@pytest.mark.parametrize("mode", ["mixup", "cutmix"])
def test_mixed_images_carry_matching_soft_labels(mode):
    ims = [_img((255, 0, 0)), _img((0, 0, 255))]
    out, soft = mix_images(ims * 10, [0, 1] * 10, 3, mode, 0.8, torch.Generator().manual_seed(0))
    assert soft.shape == (20, 3) and np.allclose(soft.sum(1), 1) and np.all(soft[:, 2] == 0)
    for im, s in zip(out, soft, strict=True):
        a = np.asarray(im, dtype=float)
        red = a[..., 0].mean() / 255  # share of the red image in the mix
        assert abs(red - s[0]) < 0.02, (mode, red, s)


def test_soft_head_matches_logistic_regression_on_hard_labels():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 16))
    y = np.repeat(np.arange(5), 6)
    x = centres[y] + 0.9 * rng.normal(size=(30, 16))
    yq = np.repeat(np.arange(5), 40)
    xq = centres[yq] + 0.9 * rng.normal(size=(200, 16))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    xq /= np.linalg.norm(xq, axis=1, keepdims=True)
    lr = logistic_regression_accuracy(x, y, xq, yq)
    soft = soft_label_accuracy(x, np.eye(5)[y], xq, yq)
    assert abs(lr - soft) <= 0.01 and lr > 0.5


def test_baselines_are_registered_and_non_generative():
    for name, view, mix in (
        ("strong", "strong", None),
        ("mixup", "weak", "mixup"),
        ("cutmix", "weak", "cutmix"),
    ):
        s = REGISTRY.get(name).create()
        assert not s.generative and s.view == view and s.mix == mix
    with pytest.raises(ValueError, match="alpha"):
        REGISTRY.get("mixup").create(alpha=0)
