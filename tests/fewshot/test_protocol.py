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
