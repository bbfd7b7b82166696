"""Data transforms with learn2learn's meaning for each benchmark (its ``data_augmentation``).

Generated images go through the same transform as the real ones they join.
"""

from __future__ import annotations

import torch

from genie_plugin.errors import ConfigError

LEE2019_MEAN = (120.39586422 / 255.0, 115.59361427 / 255.0, 104.54012653 / 255.0)
LEE2019_STD = (70.68188272 / 255.0, 68.27635443 / 255.0, 72.54505529 / 255.0)
DATA_AUGMENTATIONS = (None, "normalize", "lee2019")


class _Fit:
    """Resize (bicubic, short side) + centre crop to ``size``; an image already that size is
    left untouched, so learn2learn's 84 px pickles reach the tensor bit for bit."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, img):
        from torchvision.transforms import functional as F

        if img.size == (self.size, self.size):
            return img
        img = F.resize(img, self.size, interpolation=F.InterpolationMode.BICUBIC)
        return F.center_crop(img, self.size)


def _pixels_255(img) -> torch.Tensor:
    from torchvision.transforms import functional as F

    return F.pil_to_tensor(img).float()


def data_transforms(dataset: str, data_augmentation: str | None = None):
    """(train, test) PIL -> tensor transforms with learn2learn's meaning for each benchmark.

    ``None``: each benchmark's own pixels — miniImageNet 0–255 floats (learn2learn's pickle
    tensors), tieredImageNet 0–1 (``ToTensor``); CUB, the ImageNet folders and shapes, which
    learn2learn has no benchmark for, 0–1 like tieredImageNet. Every image is brought to the
    benchmark size first (84 px; shapes 32) by a bicubic resize + centre crop that leaves images
    of that size alone. ``"normalize"``: 0–1 everywhere. ``"lee2019"``: learn2learn's
    train (random crop with padding, colour jitter, flip, normalise) and test (normalise)
    transforms. One difference, on purpose: learn2learn's miniImageNet ``lee2019`` train
    transform feeds 0–255 floats to ``ToPILImage``, which wraps them; here it starts from the
    image itself.
    """
    from torchvision import transforms as T

    if data_augmentation not in DATA_AUGMENTATIONS:
        raise ConfigError(
            f"data_augmentation={data_augmentation!r}: choose None, 'normalize' or 'lee2019' "
            "(learn2learn's options)"
        )
    size = 32 if dataset in ("shapes", "cifarfs", "fc100") else 84  # CIFAR: 32 px
    fit = _Fit(size)
    if data_augmentation is None:
        base = _pixels_255 if dataset == "mini-imagenet" else T.ToTensor()
        tf = T.Compose([fit, base])
        return tf, tf
    if data_augmentation == "normalize":
        tf = T.Compose([fit, T.ToTensor()])
        return tf, tf
    norm = T.Normalize(mean=LEE2019_MEAN, std=LEE2019_STD)
    train = T.Compose(
        [
            fit,
            T.RandomCrop(size, padding=max(1, round(8 * size / 84))),
            T.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            norm,
        ]
    )
    return train, T.Compose([fit, T.ToTensor(), norm])


def default_image_transform(dataset: str):
    """The test-split transform of :func:`data_transforms` with ``data_augmentation=None``."""
    return data_transforms(dataset)[1]
