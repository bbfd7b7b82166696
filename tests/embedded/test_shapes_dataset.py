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
