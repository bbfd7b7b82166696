"""The procedural shapes dataset: deterministic, enough classes/images, nuisance varies."""

import numpy as np

from genie_plugin.embedded import shapes
from genie_plugin.embedded.dataset import ShapesDataset, export_png_tree, load_arrays


def test_classes_and_splits():
    assert len(shapes.CLASSES) >= 32 and len(set(shapes.CLASSES)) == len(shapes.CLASSES)
    split_names = [n for names in shapes.SPLITS.values() for n in names]
    assert sorted(split_names) == sorted(shapes.CLASSES)
    assert len(shapes.SPLITS["novel"]) >= 5  # 5-way episodes on novel classes


def test_deterministic_from_seed_and_pools_are_disjoint():
    a, pa = shapes.generate_class("star", 6, seed=0)
    b, _ = shapes.generate_class("star", 6, seed=0)
    c, _ = shapes.generate_class("star", 6, seed=1)
    g, _ = shapes.generate_class("star", 6, seed=0, pool="generator")
    assert a.dtype == np.uint8 and a.shape == (6, 32, 32, 3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, g)


def test_nuisance_context_varies_within_a_class():
    _, params = shapes.generate_class("circle", 40, seed=0)
    assert len({p.bg0 for p in params}) > 30
    assert len({p.fg for p in params}) > 30
    assert np.std([p.cx for p in params]) > 0.03 and np.std([p.rotation for p in params]) > 0.2
    assert any(p.gradient_angle is None for p in params) and any(p.gradient_angle for p in params)
    assert any(p.clutter for p in params)


def test_dataset_cache_and_items():
    ds = ShapesDataset("novel")
    assert len(ds) == 120 * len(shapes.SPLITS["novel"])
    img, label = ds[5]
    assert img.mode == "RGB" and img.size == (32, 32) and 0 <= label < len(ds.class_names)
    x2, y2, _ = load_arrays("novel")  # from the cache file now
    assert np.array_equal(ds.x, x2) and np.array_equal(ds.y, y2)
    assert min(np.bincount(ds.y)) >= 100


def test_png_export(tmp_path):
    n = export_png_tree(tmp_path, per_class=2)
    assert n == 2 * len(shapes.CLASSES)
    files = sorted(tmp_path.glob("novel/*/*.png"))
    assert len(files) == 2 * len(shapes.SPLITS["novel"])
    from PIL import Image

    with Image.open(files[0]) as im:
        assert im.size == (32, 32)


def test_learn2learn_metadataset():
    from genie_plugin.embedded.dataset import shapes_metadataset

    md = shapes_metadataset("novel")
    assert sorted(md.labels) == list(range(len(shapes.SPLITS["novel"])))
    assert all(len(v) == 120 for v in md.labels_to_indices.values())
    img, label = md[md.labels_to_indices[3][0]]
    assert label == 3 and img.size == (32, 32)


def test_caption_words_are_single_tokens(tmp_path):
    from genie_plugin.embedded.train import build_tokenizer

    tok = build_tokenizer(tmp_path)
    for name in shapes.CLASSES:
        ids = tok(f"a photo of a {name}.").input_ids
        assert len(ids) == 2 + 4 + 1 + 1, (name, tok.convert_ids_to_tokens(ids))


# ----------------------------------------------------------------------------- shapes-ctx
def test_context_variant_puts_most_images_on_the_class_hue():
    """shapes-ctx: about rho of a class's images lie on its typical hue (binomial bounds), the
    rest are the independent set's images bit for bit, and every object keeps its contrast."""
    from genie_plugin.embedded.dataset import CONTEXT_RHO

    n = 300
    ind, p_ind = shapes.generate_class("bolt", n)
    ctx, p_ctx = shapes.generate_class("bolt", n, context_rho=CONTEXT_RHO)
    typical = np.array([shapes.is_typical_context("bolt", p) for p in p_ctx])
    changed = np.array([pa != pb for pa, pb in zip(p_ind, p_ctx, strict=True)])
    sd = (n * CONTEXT_RHO * (1 - CONTEXT_RHO)) ** 0.5
    assert abs(changed.sum() - n * CONTEXT_RHO) < 4 * sd
    assert typical[changed].all()  # a changed image is on the class hue
    assert np.array_equal(ctx[~changed], ind[~changed])
    assert not np.array_equal(ctx[changed], ind[changed])
    # unchanged images are typical only by chance (independent hue): rarely
    assert typical[~changed].mean() < 0.2
    for p in p_ctx:
        mean_bg = [(a + b) / 2 for a, b in zip(p.bg0, p.bg1, strict=True)]
        assert abs(
            shapes._luma(p.fg) - shapes._luma(mean_bg)
        ) > 0.3 or not shapes.is_typical_context("bolt", p)
    # rho 0 is the independent set itself
    same, _ = shapes.generate_class("bolt", 20, context_rho=0.0)
    assert np.array_equal(same, ind[:20])


def test_context_hues_separate_the_classes_of_a_split():
    for names in shapes.SPLITS.values():
        hues = sorted(shapes.context_hue(c) for c in names)
        gaps = np.diff(hues + [hues[0] + 1])
        assert np.allclose(gaps, 1 / len(names))


def test_context_variant_is_a_named_dataset():
    from genie_plugin.data.datasets import load_split

    data = load_split("shapes-ctx", "novel")
    assert data.dataset == "shapes-ctx" and data.class_names == shapes.SPLITS["novel"]
    assert data.image_id(0).startswith("shapes-ctx/novel/")
    plain = load_split("shapes", "novel")
    assert plain.image_id(0).startswith("shapes/novel/")

    # a class's images mostly share its hue in the variant, not in the original
    def hue_spread(d, label):
        import colorsys

        idx = [i for i in range(len(d.metadataset.indices_to_labels)) if d.label(i) == label]
        hues = [colorsys.rgb_to_hsv(*(np.asarray(d.image(i))[0, 0] / 255))[0] for i in idx[:60]]
        return np.median(np.abs(np.array(hues) - shapes.context_hue(d.class_names[label])))

    assert hue_spread(data, 3) < 0.05 < hue_spread(plain, 3)
