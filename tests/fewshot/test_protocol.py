"""The few-shot protocol's pieces, checked against their definitions: MixUp/CutMix images and
soft labels, which views each group gets, and the one-embed-call-per-group contract."""

import numpy as np
import pytest
import torch
from PIL import Image

from genie_plugin.fewshot.protocol import center_view, episode_features, mix_images

H = W = 24


def _flat(k: int, mode: str = "RGB") -> Image.Image:
    """A constant image whose value tells which input it was (k = 0..)."""
    # red is 0 everywhere: a mix of zeros must stay 0 (the clip's lower end)
    return Image.new("RGB", (W, H), (0, 200 - 20 * k, 5 + 25 * k)).convert(mode)


def _partner(soft_row, i):
    """(λ, j) from a soft-label row when labels are the indices: λ on i, 1 − λ on j."""
    nz = np.flatnonzero(soft_row)
    if len(nz) == 1:  # mixed with itself
        return 1.0, i
    j = int(nz[nz != i][0])
    return float(soft_row[i]), j


def test_mixup_pixels_are_the_rounded_convex_mix_its_soft_label_states():
    n = 8
    imgs = [_flat(k, mode) for k, mode in enumerate(["RGB", "L", "RGBA", "RGB"] * 2)]
    src = [np.asarray(im.convert("RGB"), dtype=np.float64)[0, 0] for im in imgs]
    out, soft = mix_images(imgs, list(range(n)), n, "mixup", 0.8, torch.Generator().manual_seed(3))
    assert len(out) == n and soft.shape == (n, n)
    np.testing.assert_allclose(soft.sum(1), 1.0)
    partners = set()
    for i, im in enumerate(out):
        assert im.mode == "RGB" and im.size == (W, H)
        lam, j = _partner(soft[i], i)
        partners.add(j)
        want = np.floor(np.clip(lam * src[i] + (1 - lam) * src[j] + 0.5, 0, 255))
        got = np.asarray(im)
        assert (got == want).all(), (i, j, lam)
    assert len(partners) > 2 and 0 < soft.max() <= 1  # partners drawn, not fixed


def test_cutmix_pastes_a_square_box_from_the_partner_and_labels_the_kept_area():
    n = 60
    imgs = [_flat(k % 10) for k in range(n)]
    labels = [k % 10 for k in range(n)]
    out, soft = mix_images(imgs, labels, 10, "cutmix", 1.0, torch.Generator().manual_seed(0))
    starts_y0 = starts_x0 = nonempty = inside_y = inside_x = 0
    for i, im in enumerate(out):
        a = np.asarray(im)
        own = np.asarray(imgs[i])
        changed = (a != own).any(-1)
        ys, xs = np.nonzero(changed)
        kept = 1 - changed.mean()
        if ys.size == 0:  # empty box, or the partner has the same colour
            continue
        nonempty += 1
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        assert changed[y0:y1, x0:x1].all()  # one solid rectangle
        j_vals = a[y0, x0]
        j = next(k for k in range(n) if (np.asarray(imgs[k])[0, 0] == j_vals).all())
        assert soft[i, labels[i]] == pytest.approx(kept)
        assert soft[i, labels[j]] == pytest.approx(1 - kept)
        starts_y0 += y0 == 0
        starts_x0 += x0 == 0
        inside_y += y0 > 0 and y1 < H  # a box side of h·√(1 − λ) < h can sit inside
        inside_x += x0 > 0 and x1 < W
        if y0 > 0 and y1 < H and x0 > 0 and x1 < W:  # not clipped: the CutMix box is square
            assert y1 - y0 == x1 - x0
    assert nonempty > n // 2 and starts_y0 and starts_x0  # boxes reach the borders
    assert inside_y and inside_x


def test_mixing_is_deterministic_in_its_generator_and_rejects_unknown_modes():
    imgs = [_flat(k) for k in range(4)]
    runs = [
        mix_images(imgs, [0, 1, 2, 3], 4, "cutmix", 1.0, torch.Generator().manual_seed(5))
        for _ in range(2)
    ]
    assert all(
        np.array_equal(np.asarray(a), np.asarray(b))
        for a, b in zip(*[r[0] for r in runs], strict=True)
    )
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    with pytest.raises(ValueError, match="unknown mix mode 'blend'"):
        mix_images(imgs, [0, 1, 2, 3], 4, "blend", 1.0, torch.Generator().manual_seed(5))


def test_center_view_is_a_centred_square_crop_resized():
    img = Image.new("RGB", (40, 20), (0, 0, 0))
    img.paste((255, 255, 255), (10, 0, 30, 20))  # the central 20×20 square is white
    v = center_view(img, 8)
    assert v.size == (8, 8) and np.asarray(v).min() > 200


class Recorder:
    """An embedder that records each call's images and returns one row per image."""

    def __init__(self):
        self.calls = []

    def __call__(self, images):
        self.calls.append(list(images))
        base = 1000 * len(self.calls)
        return np.array([[base + k, im.size[0], im.size[1]] for k, im in enumerate(images)], float)


def _episode(n_classes=3, shots=2):
    support = [(_flat(c * shots + s), c) for c in range(n_classes) for s in range(shots)]
    generated = [(_flat(9), 1), (_flat(8), 2)]
    query = [(_flat(7), c) for c in range(n_classes) for _ in range(2)]
    return support, generated, query


@pytest.mark.parametrize("view", ["weak", "strong"])
def test_episode_features_views_per_group_one_call_each(view):
    support, generated, query = _episode()
    emb = Recorder()
    x, y, fq, yq = episode_features(
        emb, support, generated, query, real_views=3, gen_views=2, size=16,
        rng=torch.Generator().manual_seed(0), view=view,
    )  # fmt: skip
    real, gen, q = emb.calls  # real views, generated views, queries: one call each
    assert (len(real), len(gen), len(q)) == (3 * len(support), 2 * len(generated), len(query))
    assert all(im.size == (16, 16) for call in emb.calls for im in call)
    assert x.shape == (len(real) + len(gen), 3) and fq.shape == (len(query), 3)
    assert list(y) == [c for _, c in support for _ in range(3)] + [1, 1, 2, 2]
    assert list(yq) == [c for _, c in query]
    np.testing.assert_array_equal(x[:, 0], [1000 + k for k in range(len(real))] +
                                  [2000 + k for k in range(len(gen))])  # fmt: skip
    np.testing.assert_array_equal(fq[:, 0], [3000 + k for k in range(len(query))])
    # the views are random crops of their source, not the source resized
    assert any(
        not np.array_equal(np.asarray(a), np.asarray(b))
        for a, b in zip(real, real[1:], strict=False)
    )


def test_strong_views_differ_from_weak_views_with_the_same_generator():
    support, generated, query = _episode()
    got = {}
    for view in ("weak", "strong"):
        emb = Recorder()
        episode_features(emb, support, [], query, real_views=2, gen_views=0, size=16,
                         rng=torch.Generator().manual_seed(1), view=view)  # fmt: skip
        got[view] = [np.asarray(im) for im in emb.calls[0]]
    assert any(not np.array_equal(a, b) for a, b in zip(got["weak"], got["strong"], strict=True))


def test_episode_features_without_augmentation_uses_one_centre_view():
    support, _, query = _episode()
    emb = Recorder()
    x, y, _, _ = episode_features(
        emb, support, [], query, real_views=5, gen_views=1, size=16,
        rng=torch.Generator().manual_seed(0), augment_real=False,
    )  # fmt: skip
    assert len(emb.calls) == 2 and len(emb.calls[0]) == len(support)  # no generated call
    for (im, _), v in zip(support, emb.calls[0], strict=True):
        assert np.array_equal(np.asarray(v), np.asarray(center_view(im, 16)))
    assert list(y) == [c for _, c in support]


@pytest.mark.parametrize("n_classes", [None, 6])
def test_episode_features_with_mixing_adds_soft_rows(n_classes):
    support, generated, query = _episode()
    emb = Recorder()
    x, y, _, _ = episode_features(
        emb, support, generated, query, real_views=1, gen_views=1, size=16,
        rng=torch.Generator().manual_seed(0), mix="mixup", mix_alpha=0.5, n_classes=n_classes,
    )  # fmt: skip
    real, gen, q, mixed = emb.calls
    n_train = len(real) + len(gen)
    k = n_classes or 3
    assert len(mixed) == n_train and x.shape == (2 * n_train, 3) and y.shape == (2 * n_train, k)
    hard = [c for _, c in support] + [1, 2]
    np.testing.assert_array_equal(y[:n_train], np.eye(k)[hard])
    np.testing.assert_allclose(y[n_train:].sum(1), 1.0)
    np.testing.assert_array_equal(x[n_train:, 0], [4000 + i for i in range(n_train)])


# --- the views' parameters, against their definitions (issue 19's mutation survivors) ---


def _boxes(w, h, n, seed=0):
    from genie_plugin.fewshot.protocol import weak_params

    g = torch.Generator().manual_seed(seed)
    return [weak_params(w, h, g) for _ in range(n)]


def test_weak_crops_follow_torchvision_random_resized_crop():
    """Scale (0.2, 1) and ratio (3/4, 4/3) as RandomResizedCrop draws them: the same
    distribution of area and aspect (two-sample KS against torchvision's own get_params),
    each box inside the image, every position reachable, a horizontal flip half the time."""
    from scipy.stats import ks_2samp
    from torchvision.transforms import RandomResizedCrop

    n, w, h = 4000, 40, 40
    draws = _boxes(w, h, n)
    boxes = np.array([b for b, _ in draws])
    x, y, cw, ch = boxes.T
    assert (cw >= 1).all() and (ch >= 1).all() and (x >= 0).all() and (y >= 0).all()
    assert (x + cw <= w).all() and (y + ch <= h).all()
    area, log_ar = cw * ch / (w * h), np.log(cw / ch)
    assert area.min() < 0.22 and area.max() > 0.9 and area.min() > 0.17  # rounding aside
    assert np.exp(log_ar).min() < 0.8 and np.exp(log_ar).max() > 1.25
    assert np.exp(log_ar).min() > 0.75 - 0.06 and np.exp(log_ar).max() < 4 / 3 + 0.06
    assert abs(log_ar.mean()) < 0.03  # log-uniform ratio: symmetric about 1 on a square
    assert (x == 0).any() and (x == w - cw).any() and (y == 0).any() and (y == h - ch).any()
    assert 0.45 < np.mean([f for _, f in draws]) < 0.55
    with torch.random.fork_rng(devices=[]):  # torchvision draws from the global RNG
        torch.manual_seed(0)
        tv = np.array(
            [RandomResizedCrop.get_params(Image.new("RGB", (w, h)), (0.2, 1.0), (3 / 4, 4 / 3))
             for _ in range(n)]
        )  # fmt: skip
    tv_area, tv_log_ar = tv[:, 2] * tv[:, 3] / (w * h), np.log(tv[:, 3] / tv[:, 2])
    assert ks_2samp(area, tv_area).pvalue > 1e-3
    assert ks_2samp(log_ar, tv_log_ar).pvalue > 1e-3


def test_weak_crops_at_the_size_limits():
    """One-pixel and full-width boxes are allowed, empty ones never; an image no box fits
    (100×5: every candidate is taller than 5) falls back to the whole image."""
    sizes_2x2 = {b[2:] for b, _ in _boxes(2, 2, 400)}
    assert sizes_2x2 == {(1, 1), (1, 2), (2, 1), (2, 2)}
    assert {b for b, _ in _boxes(1, 1, 200)} == {(0, 0, 1, 1)}
    flat = _boxes(100, 5, 200)
    assert {b for b, _ in flat} == {(0, 0, 100, 5)}
    assert 0.3 < np.mean([f for _, f in flat]) < 0.7  # the flip is still drawn


def test_weak_view_is_the_crop_of_its_box_resized_and_flipped():
    from genie_plugin.fewshot.protocol import weak_params, weak_view

    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (30, 50, 3), dtype=np.uint8))
    for seed in range(6):
        (x, y, cw, ch), flip = weak_params(50, 30, torch.Generator().manual_seed(seed))
        want = img.crop((x, y, x + cw, y + ch)).resize((16, 16), Image.Resampling.BICUBIC)
        if flip:
            want = want.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        got = weak_view(img, 16, torch.Generator().manual_seed(seed))
        assert np.array_equal(np.asarray(got), np.asarray(want)), seed


def test_strong_view_parameters_follow_the_reference_baseline():
    from genie_plugin.fewshot.protocol import strong_params

    g = torch.Generator().manual_seed(0)
    ps = [strong_params(84, g) for _ in range(4000)]
    jit = np.array([p["jitter"] for p in ps if p["jitter"] is not None])
    assert 0.77 < len(jit) / len(ps) < 0.83
    for col in range(3):  # brightness, contrast, saturation in [0.6, 1.4]
        assert 0.6 <= jit[:, col].min() < 0.62 and 1.38 < jit[:, col].max() <= 1.4
    assert -0.1 <= jit[:, 3].min() < -0.098 and 0.098 < jit[:, 3].max() <= 0.1
    assert abs(jit[:, 3].mean()) < 0.005
    assert 0.17 < np.mean([p["gray"] for p in ps]) < 0.23
    blur = [p["blur"] for p in ps if p["blur"] is not None]
    assert 0.47 < len(blur) / len(ps) < 0.53
    sig = np.array([s for _, s in blur])
    assert 0.1 <= sig.min() < 0.12 and 1.98 < sig.max() <= 2.0
    assert {k for k, _ in blur} == {9}  # odd, about a tenth of the view size
    assert 0.47 < np.mean([p["vflip"] for p in ps]) < 0.53
    for size, k in ((8, 3), (32, 3), (64, 7), (224, 23)):
        blurs = [p["blur"] for p in (strong_params(size, g) for _ in range(20)) if p["blur"]]
        assert {b[0] for b in blurs} == {k}, size


def test_strong_view_is_its_weak_view_when_nothing_is_drawn():
    from genie_plugin.fewshot.protocol import strong_params, strong_view, weak_params, weak_view

    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (20, 20, 3), dtype=np.uint8))
    plain = flipped = None
    for seed in range(200):
        g = torch.Generator().manual_seed(seed)
        weak_params(20, 20, g)
        p = strong_params(12, g)
        if p["jitter"] is None and not p["gray"] and p["blur"] is None:
            if p["vflip"] and flipped is None:
                flipped = seed
            elif not p["vflip"] and plain is None:
                plain = seed
    assert plain is not None and flipped is not None
    weak = np.asarray(weak_view(img, 12, torch.Generator().manual_seed(plain)))
    assert np.array_equal(
        np.asarray(strong_view(img, 12, torch.Generator().manual_seed(plain))), weak
    )
    weak = np.asarray(weak_view(img, 12, torch.Generator().manual_seed(flipped)))
    strong = np.asarray(strong_view(img, 12, torch.Generator().manual_seed(flipped)))
    assert np.array_equal(strong, weak[::-1])


def test_soft_label_head_on_hard_labels_is_scikit_learns_logistic_regression():
    """Its objective is LogisticRegression(C)'s: on one-hot labels the fitted probabilities
    match scikit-learn's (C = 1 by default, and another C)."""
    from sklearn.linear_model import LogisticRegression

    from genie_plugin.fewshot.protocol import fit_soft_linear

    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 6)) + 0.3  # off-centre: the bias matters
    y = rng.integers(0, 4, 40)
    y[:4] = [0, 1, 2, 3]
    xq = rng.normal(size=(25, 6))
    for kw in ({}, {"C": 0.3}):
        w, b = fit_soft_linear(x, np.eye(4)[y], **kw)
        ours = torch.softmax(torch.as_tensor(xq) @ w + b, dim=1).numpy()
        ref = LogisticRegression(C=kw.get("C", 1.0), tol=1e-10, max_iter=10_000).fit(x, y)
        assert np.abs(ours - ref.predict_proba(xq)).max() < 1e-4, kw


def test_hard_label_accuracy_is_the_reference_classifier():
    """C = 1.0 as reference.md states: on data where C = 2 would score otherwise."""
    from sklearn.linear_model import LogisticRegression

    from genie_plugin.fewshot.protocol import logistic_regression_accuracy

    r = np.random.default_rng(0)
    x = r.normal(size=(20, 16))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = r.integers(0, 5, 20)
    xq = r.normal(size=(200, 16))
    xq /= np.linalg.norm(xq, axis=1, keepdims=True)
    yq = r.integers(0, 5, 200)
    acc = {c: LogisticRegression(C=c, max_iter=1000).fit(x, y).score(xq, yq) for c in (1.0, 2.0)}
    assert acc[1.0] != acc[2.0]  # the data tells the two apart
    assert logistic_regression_accuracy(x, y, xq, yq) == acc[1.0]


def test_mixing_streams_differ_across_generators():
    """Each generator seeds its own numpy stream over the full range: 150 seeds, 150 mixes."""
    imgs = [_flat(k) for k in range(6)]
    seen = {
        mix_images(imgs, list(range(6)), 6, "mixup", 0.8, torch.Generator().manual_seed(s))[1]
        .round(12)
        .tobytes()
        for s in range(150)
    }
    assert len(seen) == 150


def test_strong_blur_uses_the_drawn_sigma():
    """torchvision derives σ from the kernel when none is given: the drawn one must be used."""
    import torchvision.transforms.functional as TF

    from genie_plugin.fewshot.protocol import strong_params, strong_view, weak_params, weak_view

    img = Image.fromarray(np.random.default_rng(2).integers(0, 256, (40, 40, 3), dtype=np.uint8))
    for seed in range(300):
        g = torch.Generator().manual_seed(seed)
        weak_params(40, 40, g)
        p = strong_params(32, g)
        if p["jitter"] is None and not p["gray"] and p["blur"] and not p["vflip"]:
            break
    k, sigma = p["blur"]
    assert abs(sigma - (0.3 * ((k - 1) * 0.5 - 1) + 0.8)) > 0.2  # differs from the default σ
    weak = weak_view(img, 32, torch.Generator().manual_seed(seed))
    want = np.asarray(TF.gaussian_blur(weak, [k, k], [sigma, sigma]))
    got = np.asarray(strong_view(img, 32, torch.Generator().manual_seed(seed)))
    assert np.array_equal(got, want)


def test_soft_label_accuracy_on_embeddings_as_backbones_give_them():
    """float32 features (what a backbone returns), the default C = 1 and a C passed through:
    on one-hot labels the accuracy is scikit-learn's LogisticRegression(C)'s."""
    from sklearn.linear_model import LogisticRegression

    from genie_plugin.fewshot.protocol import fit_soft_linear, soft_label_accuracy

    r = np.random.default_rng(0)
    x = r.normal(size=(20, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = r.integers(0, 5, 20)
    xq = r.normal(size=(200, 16)).astype(np.float32)
    xq /= np.linalg.norm(xq, axis=1, keepdims=True)
    yq = r.integers(0, 5, 200)
    acc = {
        c: LogisticRegression(C=c, max_iter=1000).fit(x, y).score(xq, yq) for c in (1.0, 2.0, 0.3)
    }
    assert len(set(acc.values())) == 3  # the data tells the three apart
    assert soft_label_accuracy(x, np.eye(5)[y], xq, yq) == acc[1.0]
    assert soft_label_accuracy(x, np.eye(5)[y], xq, yq, C=0.3) == acc[0.3]
    w, b = fit_soft_linear(x, np.eye(5, dtype=np.float32)[y])
    assert w.dtype == b.dtype == torch.float64  # fitted in double whatever comes in


def test_soft_label_head_converges_where_twenty_lbfgs_steps_do_not():
    """A 64-d problem: L-BFGS's default of 20 iterations stops short; the head runs to the
    optimum scikit-learn finds."""
    from sklearn.linear_model import LogisticRegression

    from genie_plugin.fewshot.protocol import fit_soft_linear

    r = np.random.default_rng(5)
    x = r.normal(size=(60, 64)) * np.linspace(0.1, 3, 64)  # badly scaled: many iterations
    y = r.integers(0, 5, 60)
    y[:5] = range(5)
    xq = r.normal(size=(30, 64))
    w, b = fit_soft_linear(x, np.eye(5)[y])
    ours = torch.softmax(torch.as_tensor(xq) @ w + b, dim=1).numpy()
    ref = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(x, y).predict_proba(xq)
    assert np.abs(ours - ref).max() < 1e-3
    w20, b20 = fit_soft_linear(x, np.eye(5)[y], max_iter=20)
    short = torch.softmax(torch.as_tensor(xq) @ w20 + b20, dim=1).numpy()
    assert np.abs(short - ref).max() > 1e-3  # what the assertion above would catch
