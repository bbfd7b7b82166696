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


def weak_params(w: int, h: int, rng: torch.Generator) -> tuple[tuple[int, int, int, int], bool]:
    """The crop box ``(x, y, cw, ch)`` and horizontal flip of a weak view of a ``w``×``h`` image:
    torchvision's RandomResizedCrop rule (scale (0.2, 1), ratio (3/4, 4/3), 10 tries, then the
    whole image), drawn from ``rng``."""
    area = w * h
    for _ in range(10):
        target = area * (0.2 + 0.8 * float(torch.rand(1, generator=rng)))
        log_r = math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * float(
            torch.rand(1, generator=rng)
        )
        ar = math.exp(log_r)
        cw, ch = round(math.sqrt(target * ar)), round(math.sqrt(target / ar))
        if 0 < cw <= w and 0 < ch <= h:
            x = int(torch.randint(0, w - cw + 1, (1,), generator=rng))
            y = int(torch.randint(0, h - ch + 1, (1,), generator=rng))
            break
    else:
        cw, ch, x, y = w, h, 0, 0
    return (x, y, cw, ch), float(torch.rand(1, generator=rng)) < 0.5


def weak_view(img: Image.Image, size: int, rng: torch.Generator) -> Image.Image:
    """RandomResizedCrop(size, scale=(0.2, 1), ratio=(3/4, 4/3)) + horizontal flip (p = 0.5)."""
    (x, y, cw, ch), flip = weak_params(*img.size, rng)
    out = img.crop((x, y, x + cw, y + ch)).resize((size, size), Image.Resampling.BICUBIC)
    return out.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if flip else out


def center_view(img: Image.Image, size: int) -> Image.Image:
    from PIL import ImageOps

    return ImageOps.fit(img, (size, size), Image.Resampling.BICUBIC)


#: The classifier every hard-label row is scored with, as rows record it.
CLASSIFIER = "sklearn LogisticRegression(C=1.0, lbfgs, max_iter=1000), float64 features"


def logistic_regression_predict(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray
) -> np.ndarray:
    """Reference classifier: LogisticRegression(l2, C=1.0, lbfgs, max_iter=1000, multinomial),
    fitted in float64.

    Why float64: scikit-learn fits float32 input in float32, where the objective is too flat
    near its optimum for the line search, so L-BFGS stops at an iteration that a last-bit
    difference between OpenBLAS kernels moves (measured on one embedded episode: 17 iterations
    with Haswell kernels, 16 with SkylakeX, decisions 9e-4 apart, one query of 80 flipped). In
    float64 all four kernel sets tried stop at the same iteration, decisions within 3e-15
    (``benchmarks/results/cpu_kernels_*.json`` has the board-wide check)."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=1.0, solver="lbfgs", max_iter=1000)
    clf.fit(np.asarray(x_train, dtype=np.float64), y_train)
    return clf.predict(np.asarray(x_test, dtype=np.float64))


def logistic_regression_accuracy(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray
) -> float:
    """Query accuracy of the reference classifier (:func:`logistic_regression_predict`)."""
    return float((logistic_regression_predict(x_train, y_train, x_test) == y_test).mean())


def strong_params(size: int, rng: torch.Generator) -> dict:
    """What a strong view applies after its weak view, drawn from ``rng`` in the order applied:
    colour jitter factors (p 0.8; brightness/contrast/saturation in [0.6, 1.4], hue in
    [-0.1, 0.1]) or None, grayscale (p 0.2), Gaussian blur ``(kernel, sigma)`` (p 0.5, kernel
    about a tenth of ``size``, odd, >= 3; σ in [0.1, 2]) or None, vertical flip (p 0.5)."""

    def u(lo=0.0, hi=1.0):
        return lo + (hi - lo) * float(torch.rand(1, generator=rng))

    jitter = (u(0.6, 1.4), u(0.6, 1.4), u(0.6, 1.4), u(-0.1, 0.1)) if u() < 0.8 else None
    gray = u() < 0.2
    blur = (max(3, (size // 10) | 1), u(0.1, 2.0)) if u() < 0.5 else None
    return {"jitter": jitter, "gray": gray, "blur": blur, "vflip": u() < 0.5}


def strong_view(img: Image.Image, size: int, rng: torch.Generator) -> Image.Image:
    """Weak view + colour jitter (0.4/0.4/0.4/0.1, p 0.8), grayscale (p 0.2), Gaussian blur
    (σ ∈ [0.1, 2], p 0.5) and vertical flip (p 0.5), as reference.md's strong baseline."""
    import torchvision.transforms.functional as TF

    out = weak_view(img, size, rng)
    p = strong_params(size, rng)
    if p["jitter"] is not None:
        b, c, s, hue = p["jitter"]
        out = TF.adjust_brightness(out, b)
        out = TF.adjust_contrast(out, c)
        out = TF.adjust_saturation(out, s)
        out = TF.adjust_hue(out, hue)
    if p["gray"]:
        out = TF.to_grayscale(out, num_output_channels=3)
    if p["blur"] is not None:
        k, sigma = p["blur"]
        out = TF.gaussian_blur(out, [k, k], [sigma, sigma])
    return out.transpose(Image.Transpose.FLIP_TOP_BOTTOM) if p["vflip"] else out


def mix_images(
    images: Sequence[Image.Image],
    labels: Sequence[int],
    n_classes: int,
    mode: str,
    alpha: float,
    rng: torch.Generator,
) -> tuple[list[Image.Image], np.ndarray]:
    """One MixUp/CutMix image per input, partner drawn uniformly; λ ~ Beta(alpha, alpha).

    Returns the mixed images and their soft labels (λ·e_y + (1 − λ)·e_partner; for CutMix λ is
    the kept area after clipping the box, as in the CutMix paper).
    """
    np_rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=rng)))
    arrs = [np.asarray(im.convert("RGB"), dtype=np.float32) for im in images]
    out, soft = [], np.zeros((len(images), n_classes))
    for i, a in enumerate(arrs):
        j = int(np_rng.integers(len(arrs)))
        lam = float(np_rng.beta(alpha, alpha))
        b = arrs[j]
        if mode == "mixup":
            m = lam * a + (1 - lam) * b
        elif mode == "cutmix":
            h, w = a.shape[:2]
            ch, cw = int(h * np.sqrt(1 - lam)), int(w * np.sqrt(1 - lam))
            cy, cx = int(np_rng.integers(h)), int(np_rng.integers(w))
            y0, y1 = np.clip([cy - ch // 2, cy + ch // 2], 0, h)
            x0, x1 = np.clip([cx - cw // 2, cx + cw // 2], 0, w)
            m = a.copy()
            m[y0:y1, x0:x1] = b[y0:y1, x0:x1]
            lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
        else:
            raise ValueError(f"unknown mix mode {mode!r}")
        out.append(Image.fromarray(np.clip(m + 0.5, 0, 255).astype(np.uint8)))
        soft[i, labels[i]] += lam
        soft[i, labels[j]] += 1 - lam
    return out, soft


def soft_label_accuracy(
    x_train: np.ndarray,
    y_soft: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    C: float = 1.0,
    max_iter: int = 200,
) -> float:
    """Linear head for soft labels, with logistic regression's objective and regularisation.

    Minimises mean soft cross-entropy + ||W||² / (2·n·C) (bias unregularised), the objective of
    scikit-learn's ``LogisticRegression(C)`` generalised to soft targets, so MixUp/CutMix rows are
    comparable with the hard-label ones. Full-batch L-BFGS from zeros: deterministic.
    """
    pred = soft_label_predict(x_train, y_soft, x_test, C=C, max_iter=max_iter)
    return float((pred == y_test).mean())


def soft_label_predict(
    x_train: np.ndarray,
    y_soft: np.ndarray,
    x_test: np.ndarray,
    *,
    C: float = 1.0,
    max_iter: int = 200,
) -> np.ndarray:
    """The classes :func:`soft_label_accuracy` predicts for ``x_test``."""
    w, b = fit_soft_linear(x_train, y_soft, C=C, max_iter=max_iter)
    with torch.no_grad():
        return (torch.as_tensor(x_test, dtype=torch.float64) @ w + b).argmax(1).numpy()


def fit_soft_linear(
    x_train: np.ndarray, y_soft: np.ndarray, *, C: float = 1.0, max_iter: int = 200
) -> tuple[torch.Tensor, torch.Tensor]:
    """The weights and bias :func:`soft_label_accuracy` classifies with (float64)."""
    x = torch.as_tensor(x_train, dtype=torch.float64)
    t = torch.as_tensor(y_soft, dtype=torch.float64)
    n, d = x.shape
    w = torch.zeros(d, t.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(t.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [w, b], lr=1, max_iter=max_iter, tolerance_grad=1e-7, line_search_fn="strong_wolfe"
    )

    def closure():
        opt.zero_grad()
        logp = torch.log_softmax(x @ w + b, dim=1)
        loss = -(t * logp).sum(1).mean() + (w * w).sum() / (2 * n * C)
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def episode_features(
    embed,
    support: Sequence[tuple[Image.Image, int]],
    generated: Sequence[tuple[Image.Image, int]],
    query: Sequence[tuple[Image.Image, int]],
    *,
    real_views: int,
    gen_views: int,
    size: int,
    rng: torch.Generator,
    augment_real: bool = True,
    view: str = "weak",
    mix: str | None = None,
    mix_alpha: float = 0.8,
    n_classes: int | None = None,
):
    """Training features/labels (real views + generated views [+ mixed views]) and query ones.

    With ``mix`` the training labels are an n×classes soft-label matrix (real views one-hot).
    """
    view_fn = {"weak": weak_view, "strong": strong_view}[view]
    real_imgs, real_y = [], []
    for im, y in support:
        if augment_real:
            views = [view_fn(im, size, rng) for _ in range(real_views)]
        else:
            views = [center_view(im, size)]
        real_imgs += views
        real_y += [y] * len(views)
    gen_imgs, gen_y = [], []
    for im, y in generated:
        gen_imgs += [weak_view(im, size, rng) for _ in range(gen_views)]
        gen_y += [y] * gen_views
    q_imgs = [center_view(im, size) for im, _ in query]
    y_q = np.array([y for _, y in query])
    # one embed call per group (real views / generated / mixed / queries): the groups that are
    # the same for every strategy are then the same batches, so a memo can share them
    feats = [embed(real_imgs)] + ([embed(gen_imgs)] if gen_imgs else [])
    train_imgs, train_y = real_imgs + gen_imgs, real_y + gen_y
    f_q = embed(q_imgs)
    if mix is not None:
        k = n_classes or (max(train_y) + 1)
        mixed, soft_mixed = mix_images(train_imgs, train_y, k, mix, mix_alpha, rng)
        hard = np.eye(k)[np.array(train_y)]
        x = np.concatenate([*feats, embed(mixed)])
        return x, np.concatenate([hard, soft_mixed]), f_q, y_q
    return np.concatenate(feats), np.array(train_y), f_q, y_q
