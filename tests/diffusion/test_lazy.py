"""A model served from its recorded facts: the same keys, counts and row fields as the loaded
model, the weights loaded only for an image the cache does not have, never another model's or
setting's record, and a record that disagrees with the loaded model stops the run."""

import json

import pytest

from genie_plugin.bench.runner import run_scenario
from genie_plugin.bench.scenario import Scenario
from genie_plugin.diffusion import loading
from genie_plugin.diffusion.key import generation_key
from genie_plugin.diffusion.lazy import LazyGenerator, facts_path
from genie_plugin.diffusion.loading import load_configured
from genie_plugin.diffusion.model import DiffusionGenerator
from genie_plugin.diffusion.sampler import SampleItem, unet_rows
from genie_plugin.errors import GenieError
from tests.conftest import assert_same_pixels, make_image

SETTINGS = {"steps": 6, "guidance_scale": 4.0, "guidance_t_min": 0.2}


def _items():
    src = make_image(3)
    return [
        SampleItem("a photo of a cat.", 0.8, 11, src),
        SampleItem("a photo of a dog.", 0.5, 12, src),
        SampleItem("a photo of a dog.", 1.0, 13),
    ]


@pytest.fixture
def cache_root(tmp_path, monkeypatch):
    monkeypatch.setenv("GENIE_CACHE_DIR", str(tmp_path / "root"))
    return tmp_path / "root"


@pytest.mark.parametrize("backend", ["torch", pytest.param("onnx", marks=pytest.mark.onnx)])
def test_served_model_gives_the_loaded_models_keys_counts_and_images(cache_root, backend):
    if backend == "onnx":
        pytest.importorskip("onnxruntime")
    kw = {"device": "cpu", "settings": SETTINGS, "backend": backend}
    real = load_configured("tiny-random", lazy=True, **kw)
    assert isinstance(real, DiffusionGenerator)  # nothing recorded yet: loaded, and recorded
    lazy = load_configured("tiny-random", lazy=True, **kw)
    assert isinstance(lazy, LazyGenerator) and not lazy.loaded
    assert load_configured("tiny-random", **kw).__class__ is DiffusionGenerator  # asked eager
    for view_r, view_l in ((real, lazy), (real.with_sampler(max_item_steps=2),
                                          lazy.with_sampler(max_item_steps=2))):  # fmt: skip
        for it in _items():
            assert generation_key(view_l, it) == generation_key(view_r, it)
        assert unet_rows(view_l, _items()) == unet_rows(view_r, _items())
        assert view_l.describe() == view_r.describe()
        assert view_l.resolution == view_r.resolution
    assert not lazy.loaded  # keys, counts and row fields read no weights
    want = real.with_sampler(max_item_steps=2).generate(_items(), max_batch=4)
    got = lazy.with_sampler(max_item_steps=2).generate(_items(), max_batch=4)
    assert lazy.loaded  # the views share one load
    for a, b in zip(got, want, strict=True):
        assert_same_pixels(a, b)


def test_a_record_serves_only_its_own_request(cache_root):
    load_configured("tiny-random", device="cpu", settings=SETTINGS, lazy=True)
    other = load_configured(
        "tiny-random", device="cpu", settings={**SETTINGS, "steps": 7}, lazy=True
    )
    assert isinstance(other, DiffusionGenerator)  # other settings: no record yet
    assert len(list((cache_root / "model_facts").glob("*.json"))) == 2


def test_a_record_that_disagrees_with_the_model_stops_before_any_image(cache_root):
    load_configured("tiny-random", device="cpu", settings=SETTINGS, lazy=True)
    req = loading._lazy_request("tiny-random", "cpu", SETTINGS, "torch", False)
    path = facts_path(req)
    facts = json.loads(path.read_text())
    path.write_text(json.dumps({**facts, "native_resolution": facts["native_resolution"] * 2}))
    lazy = load_configured("tiny-random", device="cpu", settings=SETTINGS, lazy=True)
    with pytest.raises(GenieError, match="native_resolution"):
        lazy.generate(_items()[:1])


def test_a_warm_run_never_loads_the_weights(cache_root, tmp_path, monkeypatch):
    scn = Scenario.from_dict(
        {
            "name": "lazy",
            "dataset": "shapes",
            "split": "novel",
            "backbone": "embedded",
            "model": "tiny-random",
            "episodes": 2,
            "ways": 2,
            "shots": 1,
            "queries": 2,
            "steps": 3,
            "real_views": 1,
            "view_size": 32,
            "strategies": ["genie", "genie_ada"],
        }
    )
    cold = run_scenario(scn, cache_dir=tmp_path / "cache", device="cpu")

    def no_load(*a, **k):
        raise AssertionError("the weights were loaded on a warm run")

    monkeypatch.setattr(loading, "_from_components", no_load)
    warm = run_scenario(scn, cache_dir=tmp_path / "cache", device="cpu")
    for c, w in zip(cold, warm, strict=True):
        assert w["status"] == "ok", w.get("error")
        assert w["episode_accuracies"] == c["episode_accuracies"]
        assert w["model"] == c["model"] and w["unet_rows"] == c["unet_rows"]
        assert w["images_generated"] == 0 and w["cache_hits"] > 0
    monkeypatch.undo()
    # a miss on a warm model loads it then: a deleted image is regenerated
    victim = next((tmp_path / "cache").rglob("*.png"))
    victim.unlink()
    again = run_scenario(scn, cache_dir=tmp_path / "cache", device="cpu")
    assert sum(r["images_generated"] for r in again) == 1


def test_a_warm_run_with_backend_auto_loads_nothing(cache_root, tmp_path, monkeypatch):
    """``bench run --backend auto`` (one process): the first run times the backends with the
    model it loads and records its facts; the second finds the cached choice and the facts,
    and every image in the cache: it never loads the weights."""
    from typer.testing import CliRunner

    from genie_cli.main import app

    args = [
        "bench", "run", "--model", "tiny-random", "--steps", "3", "--episodes", "1",
        "-s", "genie", "--backend", "auto", "--device", "cpu",
        "--out", str(tmp_path / "r.jsonl"), "--cache", str(tmp_path / "cache"),
    ]  # fmt: skip
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "measured now" in first.output

    def no_load(*a, **k):
        raise AssertionError("the weights were loaded on a warm run")

    monkeypatch.setattr(loading, "_from_components", no_load)
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    assert "cached choice" in second.output and "failed" not in second.output
    row = json.loads((tmp_path / "r.jsonl").read_text().splitlines()[0])
    assert row["status"] == "ok" and row["images_generated"] == 0
