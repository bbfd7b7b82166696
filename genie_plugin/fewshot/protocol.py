"""Few-shot evaluation protocol (reference.md): frozen backbone, L2-normalised features,
scikit-learn logistic regression; weak-augmented views of real support images.

Augmentation parameters are drawn from an explicit ``torch.Generator`` (torchvision's
``RandomResizedCrop.get_params`` would draw from the global RNG).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image


def weak_view(img: Image.Image, size: int, gen: torch.Generator) -> Image.Image:
    """RandomResizedCrop(size, scale=(0.2, 1), ratio=(3/4, 4/3)) + horizontal flip (p = 0.5)."""
    w, h = img.size
    area = w * h
    for _ in range(10):
        target = area * (0.2 + 0.8 * float(torch.rand(1, generator=gen)))
        log_r = math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * float(
            torch.rand(1, generator=gen)
        )
        ar = math.exp(log_r)
        cw, ch = round(math.sqrt(target * ar)), round(math.sqrt(target / ar))
        if 0 < cw <= w and 0 < ch <= h:
            x = int(torch.randint(0, w - cw + 1, (1,), generator=gen))
            y = int(torch.randint(0, h - ch + 1, (1,), generator=gen))
            break
    else:
        cw, ch, x, y = w, h, 0, 0
    out = img.crop((x, y, x + cw, y + ch)).resize((size, size), Image.Resampling.BICUBIC)
    if float(torch.rand(1, generator=gen)) < 0.5:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return out


def center_view(img: Image.Image, size: int) -> Image.Image:
    from PIL import ImageOps

    return ImageOps.fit(img, (size, size), Image.Resampling.BICUBIC)


def logistic_regression_accuracy(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray
) -> float:
    """Reference classifier: LogisticRegression(l2, C=1.0, lbfgs, max_iter=1000, multinomial)."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=1.0, solver="lbfgs", max_iter=1000)
    clf.fit(x_train, y_train)
    return float((clf.predict(x_test) == y_test).mean())


def episode_features(
    embed,
    support: Sequence[tuple[Image.Image, int]],
    generated: Sequence[tuple[Image.Image, int]],
    query: Sequence[tuple[Image.Image, int]],
    *,
    real_views: int,
    gen_views: int,
    size: int,
    gen: torch.Generator,
    augment_real: bool = True,
):
    """Training features/labels (real views + generated views) and query features/labels."""
    train_imgs, train_y = [], []
    for im, y in support:
        if augment_real:
            views = [weak_view(im, size, gen) for _ in range(real_views)]
        else:
            views = [center_view(im, size)]
        train_imgs += views
        train_y += [y] * len(views)
    for im, y in generated:
        train_imgs += [weak_view(im, size, gen) for _ in range(gen_views)]
        train_y += [y] * gen_views
    q_imgs = [center_view(im, size) for im, _ in query]
    f = embed([*train_imgs, *q_imgs])
    n = len(train_imgs)
    return f[:n], np.array(train_y), f[n:], np.array([y for _, y in query])
