"""Augmentation cache (resume, concurrency), CI formula and the protocol's pieces."""

import multiprocessing as mp

import numpy as np
import pytest
import torch

from genie_plugin.core.stats import mean_ci95
from genie_plugin.diffusion.cache import AugmentationCache, CachedGenerator
from genie_plugin.diffusion.sampler import SampleItem
from tests.conftest import make_image


def test_ci_formula():
    """The few-shot convention (and the reference code's): 1.96 · std (ddof 0) / sqrt(n), worked
    by hand: deviations ±0.175, 0.025, 0.225, 0.075 → variance 0.0875 / 4 → std 0.147902."""
    mean, ci = mean_ci95([0.5, 0.7, 0.9, 0.6])
    assert mean == pytest.approx(0.675)
    assert ci == pytest.approx(0.144944, abs=1e-6)
    assert mean_ci95([0.3, 0.3, 0.3]) == (pytest.approx(0.3), 0.0)


def _items():
    src = make_image(1)
    return [SampleItem("a photo of a cat.", r, 5 + i, src) for i, r in enumerate((0.5, 0.8))] + [
        SampleItem("a photo of a dog.", 1.0, 9)
    ]


def test_cache_resume_after_kill_gives_identical_images(tiny_gen, tmp_path):
    full = CachedGenerator(tiny_gen, AugmentationCache(tmp_path / "a")).generate(
        _items(), max_batch=1
    )

    class Killed(Exception):
        pass

    calls = {"n": 0}
    real = tiny_gen.generate

    class Dying:
        def __getattr__(self, k):
            return getattr(tiny_gen, k)

        def generate(self, items, **kw):
            calls["n"] += 1
            if calls["n"] == 2:
                raise Killed
            return real(items, **kw)

    cache = AugmentationCache(tmp_path / "b")
    with pytest.raises(Killed):
        CachedGenerator(Dying(), cache).generate(_items(), max_batch=1)
    assert len(list((tmp_path / "b").rglob("*.png"))) == 1  # the first chunk survived
    resumed = CachedGenerator(tiny_gen, cache)
    out = resumed.generate(_items(), max_batch=1)
    assert resumed.hits == 1 and resumed.generated == 2
    assert [o.tobytes() for o in out] == [f.tobytes() for f in full]
    again = CachedGenerator(tiny_gen, cache)
    again.generate(_items())
    assert again.generated == 0 and again.hits == 3


def _writer(root, k):
    from PIL import Image

    cache = AugmentationCache(root)
    for i in range(30):
        cache.put(f"{i:032x}", Image.new("RGB", (8, 8), (i, k, 0)), {"writer": k, "i": i})


def test_concurrent_writers_do_not_corrupt(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), k)) for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    cache = AugmentationCache(tmp_path)
    rows, torn = cache.records()
    # first writer wins: one record per key, from whichever writer linked its file first
    assert torn == 0 and len(rows) == 30 and 1 <= len(cache.manifest_files()) <= 3
    assert sorted(r["i"] for r in rows) == list(range(30))
    for r in rows:
        im = cache.get(f"{r['i']:032x}")
        assert im is not None and im.getpixel((0, 0)) == (r["i"], r["writer"], 0)
    assert not list(tmp_path.rglob("*.tmp"))


def test_weak_views_use_only_the_given_generator():
    from genie_plugin.fewshot.protocol import weak_view

    im = make_image(3, size=32)
    a = weak_view(im, 32, torch.Generator().manual_seed(1))
    b = weak_view(im, 32, torch.Generator().manual_seed(1))
    c = weak_view(im, 32, torch.Generator().manual_seed(2))
    assert a.tobytes() == b.tobytes() != c.tobytes()


def test_feature_memo_persists_per_call_and_backbone(tmp_path):
    import torch

    from genie_plugin.fewshot.backbones import Embedder, MemoEmbedder
    from tests.conftest import make_image

    class Counting(Embedder):
        calls = 0

        def __call__(self, images):
            Counting.calls += 1
            return super().__call__(images)

    def model(seed):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1))

    ims = [make_image(i, 16) for i in range(3)]
    a = MemoEmbedder(Counting(model(0), image_size=16, device="cpu"), store=tmp_path)
    fa = a(ims)
    assert np.array_equal(a(ims), fa) and Counting.calls == 1  # in-memory hit
    b = MemoEmbedder(Counting(model(0), image_size=16, device="cpu"), store=tmp_path)
    assert np.array_equal(b(ims), fa) and Counting.calls == 1  # from disk, bit-identical
    b(ims[:2])
    assert Counting.calls == 2  # another call (other batch): computed, not sliced from the memo
    c = MemoEmbedder(Counting(model(1), image_size=16, device="cpu"), store=tmp_path)
    fc = c(ims)  # other weights: never served from the first backbone's entries
    assert Counting.calls == 3 and not np.allclose(fc, fa)


def test_cached_generator_with_other_sampler_settings_keeps_cache_and_counts(tiny_gen, tmp_path):
    cached = CachedGenerator(tiny_gen, AugmentationCache(tmp_path))
    coarse = cached.with_sampler(steps=3)
    assert isinstance(coarse, CachedGenerator) and coarse.sampler.steps == 3
    a = coarse.generate(_items())
    assert cached.generated == 3  # the view counts into its parent's run statistics
    b = cached.generate(_items())  # other step count: other keys, generated anew
    assert cached.generated == 6 and cached.hits == 0
    coarse.generate(_items())
    assert cached.hits == 3
    assert a[0].tobytes() != b[0].tobytes()
    # the view's images are the plain generator's at steps=3 (same batch: kernels are not
    # batch-invariant, e.g. oneDNN's AVX2 convolutions round a batch of 1 differently)
    direct = tiny_gen.with_sampler(steps=3)
    assert a[0].tobytes() == direct.generate(_items())[0].tobytes()
    alone = np.asarray(direct.generate(_items()[:1])[0], dtype=np.int16)
    assert np.abs(np.asarray(a[0], dtype=np.int16) - alone).max() <= 1
