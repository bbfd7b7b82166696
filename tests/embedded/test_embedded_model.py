"""The shipped embedded model, loaded through the public loader, on a small CI-sized sample.

The full figures (600+ images, 200 pairs, 50 steps) are in the model card; these check the same
properties on fewer images so a broken export or retrain fails CI.
"""

import numpy as np
import pytest

from genie_plugin.diffusion import SampleItem, load_generator
from genie_plugin.embedded import shapes
from genie_plugin.embedded.assets import Oracle, load_embedded_backbone, model_dir
from genie_plugin.embedded.evaluate import corner_colour, fewshot_sources

STEPS = 25


@pytest.fixture(scope="module")
def gen():
    # the model's own recommended sampler (genie_sampler.json), fewer steps for CI
    return load_generator("embedded", device="cpu").with_sampler(steps=STEPS)


@pytest.fixture(scope="module")
def oracle():
    return Oracle(device="cpu")


@pytest.fixture(scope="module")
def sources():
    return fewshot_sources(8, seed=0)


def _prompt(c):
    return f"a photo of a {shapes.CLASSES[c]}."


def test_shipped_folder_is_a_diffusers_sd_pipeline_within_budget(gen):
    size = sum(p.stat().st_size for p in model_dir().rglob("*") if p.is_file())
    assert size <= 25 * 2**20
    assert type(gen.unet).__name__ == "UNet2DConditionModel"
    assert type(gen.vae).__name__ == "AutoencoderKL"
    assert type(gen.text_encoder).__name__ == "CLIPTextModel"
    assert gen.resolution == shapes.IMAGE_SIZE
    for name in shapes.CLASSES:  # every class name, novel ones included, is one token
        assert len(gen.tokenizer(_prompt(shapes.CLASSES.index(name))).input_ids) == 8


def test_oracle_recognises_real_held_out_images(oracle, sources):
    ims = [im for c in range(len(shapes.CLASSES)) for im in sources[c][:4]]
    labels = np.repeat(np.arange(len(shapes.CLASSES)), 4)
    # oracle v2: 98.5% on 1280 held-out images (cross/plus are partly the same shape)
    assert (oracle.probs(ims).argmax(1) == labels).mean() >= 0.93


def test_text2image_follows_the_prompt(gen, oracle):
    classes = list(range(0, len(shapes.CLASSES), 2))  # base, val and novel classes
    items = [SampleItem(_prompt(c), 1.0, 1000 + 10 * c + k) for c in classes for k in range(2)]
    pred = oracle.probs(gen.generate(items, max_batch=64)).argmax(1)
    acc = (pred == np.repeat(classes, 2)).mean()
    assert acc >= 0.8, acc  # model card: 96.6% at 50 steps over 800 images; chance 3%


def test_img2img_low_ratio_keeps_the_source_class(gen, oracle, sources):
    classes = list(range(1, len(shapes.CLASSES), 2))
    items = [SampleItem(_prompt(c), 0.3, 7 + c, sources[c][0]) for c in classes]
    pred = oracle.probs(gen.generate(items)).argmax(1)
    assert (pred == np.array(classes)).mean() >= 0.85  # model card: 95.0% over 320 images


def test_genie_flips_the_label_with_r_and_low_r_keeps_the_background(gen, oracle, sources):
    rng = np.random.default_rng(3)
    n_cls = len(shapes.CLASSES)
    pairs = [tuple(int(v) for v in rng.choice(n_cls, 2, replace=False)) for _ in range(40)]
    ratios = (0.3, 0.8, 1.0)
    items = [
        SampleItem(_prompt(b), r, 50 + i, sources[a][1])
        for i, (a, b) in enumerate(pairs)
        for r in ratios
    ]
    out = gen.generate(items, max_batch=64)
    p = oracle.probs(out).reshape(len(pairs), len(ratios), -1)
    p_b = np.array([p[i, :, b] for i, (_, b) in enumerate(pairs)])
    assert p_b[:, 0].mean() + 0.05 < p_b[:, 1].mean()  # P(B) rises with r
    assert (p[:, 1].argmax(1) == [b for _, b in pairs]).mean() >= 0.75  # card: 89% at r = 0.8
    # At the default r = 0.8 the background stays far nearer the source's than a Text2Image
    # output's of B (card: 26.2 vs 123.5 RGB units over 200 pairs).
    src_bg = [corner_colour(sources[a][1]) for a, _ in pairs]
    d_src = [np.linalg.norm(corner_colour(out[3 * i + 1]) - src_bg[i]) for i in range(len(pairs))]
    d_t2i = [
        np.linalg.norm(corner_colour(out[3 * i + 1]) - corner_colour(out[3 * i + 2]))
        for i in range(len(pairs))
    ]
    assert np.mean(d_src) < 0.5 * np.mean(d_t2i), (np.mean(d_src), np.mean(d_t2i))


def test_embedded_backbone_gives_normalised_features(sources):
    emb = load_embedded_backbone(device="cpu")
    f = emb([sources[0][0], sources[1][0]])
    assert f.shape[0] == 2 and f.shape[1] >= 64
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-5)


def test_genie_ada_lands_near_the_oracle_flip(gen, oracle, sources):
    from genie_plugin.core.ada import ADA_RATIOS, select_ratio

    embed = load_embedded_backbone(device="cpu")
    rng = np.random.default_rng(5)
    pairs = [
        tuple(int(v) for v in rng.choice(len(shapes.CLASSES), 2, replace=False)) for _ in range(16)
    ]
    grid = (*ADA_RATIOS, 1.0)
    items = [
        SampleItem(_prompt(b), r, 90 + i, sources[a][2])
        for i, (a, b) in enumerate(pairs)
        for r in grid
    ]
    out = gen.generate(items, max_batch=128)
    top = oracle.probs(out).argmax(1).reshape(len(pairs), len(grid))
    hits, picks = 0, []
    for i, (a, b) in enumerate(pairs):
        k = i * len(grid)
        f = embed([*out[k : k + len(ADA_RATIOS)], sources[a][2], *sources[b][3:8]])
        n = len(ADA_RATIOS)
        sel = select_ratio(ADA_RATIOS, f[:n], f[n], f[n + 1 :].mean(0))
        flips = [r for j, r in enumerate(grid) if top[i, j] == b]
        flip = flips[0] if flips else 1.0  # the oracle's flip: first grid r labelled B
        hits += abs(sel.ratio - flip) <= 0.1 + 1e-9
        picks.append(sel.ratio)
    # model card: 73.5% of 200 pairs at 50 steps with the recommended guidance interval;
    # without the interval 20% (the flip sat below the grid); here 13/16 vs 3/16
    assert hits / len(pairs) >= 0.6, (hits, picks)
    assert len(set(picks)) > 1  # a pick per pair, not a constant
