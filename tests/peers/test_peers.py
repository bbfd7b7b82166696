"""Peers on the same episodes (issue 32): per-episode fits, learned tokens and episode LoRAs in
the generation key, fits reused on rerun, filters, and a one-episode run of every peer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from genie_cli.main import app
from genie_plugin.diffusion import tokens
from genie_plugin.diffusion.fit_store import FitStore
from genie_plugin.diffusion.key import generation_key
from genie_plugin.diffusion.sampler import SampleItem
from genie_plugin.errors import ConfigError
from genie_plugin.registry import create_strategy
from genie_plugin.strategies.base import Episode, FitContext, SupportItem
from tests.conftest import make_image

PEERS = ("da_fusion", "datadream", "diff_mix", "he_filter")


@pytest.fixture(scope="module")
def gen():
    """A tiny SD of its own: fits add tokens and an adapter slot to the modules they train."""
    from genie_plugin.diffusion import SamplerConfig, load_generator

    return load_generator("tiny-random", device="cpu", sampler=SamplerConfig(steps=4))


def _episode(index: int, seed: int = 0) -> tuple[Episode, dict]:
    names = ("cat", "dog", "fox")
    support = tuple(SupportItem(f"e{index}c{c}", c) for c in range(3))
    images = {it.item_id: make_image(100 * index + it.label, size=32) for it in support}
    ep = Episode(dataset="toy", index=index, class_names=names, support=support, shots=1,
                 seed=seed)  # fmt: skip
    return ep, images


def _plan(strategy, ep, images, ctx):
    return strategy.plan_episode(ep, torch.Generator().manual_seed(0), images, None, ctx)


def test_a_learned_token_never_serves_another_episodes_images(gen, tmp_path):
    s = create_strategy("da_fusion", fit_steps=3)
    ctx = FitContext(gen, FitStore(tmp_path / "fits"))
    a = _plan(s, *_episode(0), ctx)
    b = _plan(s, *_episode(1), ctx)
    ta, tb = tokens.tokens_in([x.prompt for x in a]), tokens.tokens_in([x.prompt for x in b])
    assert len(ta) == len(tb) == 3 and not set(ta) & set(tb)  # other images, other words
    # same class, same seed and ratio: only the learned word differs, and so does the key
    item = lambda spec: SampleItem(spec.prompt, 1.0, 7)  # noqa: E731
    ka, kb = generation_key(gen, item(a[0])), generation_key(gen, item(b[0]))
    assert a[0].target_class == b[0].target_class and ka.digest() != kb.digest()
    # the name is the vector's digest: the same vector is the same word, wherever it was made
    vec = torch.arange(8, dtype=torch.float32)
    assert tokens.learn([vec.clone()]) == tokens.learn([vec]) == [tokens.token_name(vec)]
    assert tokens.token_name(vec + 1e-6) != tokens.token_name(vec)
    # a word whose fit was never loaded is refused, never encoded as plain text
    with pytest.raises(ConfigError, match="was not loaded"):
        gen.generate([SampleItem("a photo of a <learned-0123456789abcdef>.", 1.0, 1)])
    # the learned word is what generates: its images differ from the class name's
    ims = gen.generate([item(a[0]), SampleItem("a photo of a cat.", 1.0, 7)])
    assert np.abs(np.asarray(ims[0], int) - np.asarray(ims[1], int)).max() > 0


def test_fits_are_reused_from_the_store_and_a_broken_entry_is_refitted(gen, tmp_path):
    from collections import Counter

    s = create_strategy("da_fusion", fit_steps=2)
    store = FitStore(tmp_path / "fits")
    tally = Counter()
    ep, images = _episode(3)
    first = _plan(s, ep, images, FitContext(gen, store, tally))
    again = _plan(create_strategy("da_fusion", fit_steps=2), ep, images,
                  FitContext(gen, store, tally))  # fmt: skip
    assert [x.prompt for x in first] == [x.prompt for x in again]
    assert tally["fit:made"] == 1 and tally["fit:reused"] == 1 and tally["fit:steps"] == 4
    assert tally["fit:flops"] > 0
    # other settings, other fit; diff_mix shares da_fusion's (same words, same settings)
    _plan(create_strategy("da_fusion", fit_steps=3), ep, images, FitContext(gen, store, tally))
    _plan(create_strategy("diff_mix", fit_steps=2), ep, images, FitContext(gen, store, tally))
    assert tally["fit:made"] == 2 and tally["fit:reused"] == 2
    (entry,) = [p for p in store.root.rglob("*.safetensors") if p.stat().st_size and
                json.loads(p.read_bytes()[8:8 + int.from_bytes(p.read_bytes()[:8], "little")])
                ["__metadata__"]["record"].find('"steps": 2') >= 0]  # fmt: skip
    entry.write_bytes(b"\0" * 64)  # a zeroed file (a crash, a bad disk)
    _plan(create_strategy("da_fusion", fit_steps=2), ep, images, FitContext(gen, store, tally))
    assert tally["fit:made"] == 3  # refitted, and the entry replaced
    assert store.get(entry.stem) is not None


def test_an_episode_lora_is_in_the_key_and_never_runs_through_a_base_weight_backend(gen, tmp_path):
    from dataclasses import replace

    from genie_plugin.diffusion.episode_lora import AdaptedModel

    s = create_strategy("datadream", fit_steps=3)
    ep, images = _episode(5)
    specs = _plan(s, ep, images, FitContext(gen, FitStore(tmp_path / "fits")))
    fit = s._fits[("toy", 5)]
    adapted = AdaptedModel(gen, fit["lora_state"], fit["lora_config"], fit["lora_key"])
    it = SampleItem(specs[0].prompt, 1.0, specs[0].seed)
    assert generation_key(adapted, it).digest() != generation_key(gen, it).digest()
    base_before = gen.generate([it])[0]
    with_lora = adapted.generate([it])[0]
    base_after = gen.generate([it])[0]
    assert np.abs(np.asarray(with_lora, int) - np.asarray(base_before, int)).max() > 0
    assert np.array_equal(np.asarray(base_after), np.asarray(base_before))  # adapter off again
    for backend in ("onnx", "torch-compile", "cuda-graphs"):
        with pytest.raises(ConfigError, match="base weights"):
            AdaptedModel(replace(gen, backend=backend), fit["lora_state"], fit["lora_config"],
                         fit["lora_key"])  # fmt: skip


def test_filters_keep_the_best_share_by_a_judge_that_is_not_the_backbone():
    from genie_plugin.strategies.filtered import FilteredConfig

    s = create_strategy("filtered", inner="genie", inner_params={"ratio": 0.6}, keep=0.25)
    assert s.inner.config.count == 4 and s.inner.config.ratio == 0.6 and s.factor == 4
    assert create_strategy("he_filter").inner.name == "text2image"
    with pytest.raises(ConfigError, match="leak"):
        FilteredConfig(scorer="backbone")
    with pytest.raises(ConfigError, match="inner = 'weak': not a generative"):
        FilteredConfig(inner="weak")
    with pytest.raises(ConfigError, match="inner = 'nope': unknown"):
        FilteredConfig(inner="nope")
    with pytest.raises(ConfigError, match=r"keep must be in \(0, 1\]"):
        FilteredConfig(keep=0)
    with pytest.raises(ConfigError, match="a filter of a filter"):
        FilteredConfig(inner="he_filter")


def test_a_peer_needs_its_fit_before_it_plans():
    ep, images = _episode(0)
    with pytest.raises(ConfigError, match="fits on each episode's support images first"):
        create_strategy("da_fusion").plan_episode(ep, torch.Generator().manual_seed(0), images)


@pytest.fixture(scope="module")
def peer_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("peer-cache")


@pytest.mark.parametrize("name", PEERS)
def test_every_peer_runs_on_one_embedded_episode_and_reuses_its_fit(name, tmp_path, peer_cache):
    """The CI smoke of each peer: one episode of the embedded benchmark, its fit (and filter)
    counted in the row; a rerun refits nothing and generates nothing."""
    rows = []
    for k in range(2):
        out = tmp_path / f"r{k}.jsonl"
        r = CliRunner().invoke(app, ["bench", "run", "-s", "none", "-s", name, "--episodes", "1",
                                     "--out", str(out), "--cache", str(peer_cache)])  # fmt: skip
        assert r.exit_code == 0, r.output
        rows.append({x["strategy"]: x for x in map(json.loads, out.read_text().splitlines())})
    first, second = rows[0][name], rows[1][name]
    assert first["status"] == second["status"] == "ok"
    assert second["images_generated"] == 0
    assert first["episode_accuracies"] == second["episode_accuracies"]
    if name == "he_filter":
        assert first["filter_scored"] == 2 * first["filter_kept"] == 40
        assert first["filter_mean_score_kept"] >= first["filter_mean_score_all"]
    else:
        assert first["fits_made"] + first["fits_reused"] == 1 and second["fits_made"] == 0
        assert second["fits_reused"] == 1 and second["fit_flops"] == first["fit_flops"] > 0
        # the fit in the generation's unit: its FLOPs over one UNet row's
        assert second["fit_unet_rows"] == first["fit_unet_rows"] > 0


def test_a_third_party_strategy_carries_its_own_spec_fields():
    from dataclasses import dataclass

    from genie_plugin.strategies.base import GenerationSpec

    base = dict(strategy="mine", dataset="toy", episode=1, label=0, target_class="cat",
                prompt="a photo of a cat.", seed=3)  # fmt: skip
    s = GenerationSpec(**base, extra={"guide": [1, 2], "mask": "m.png"})
    assert GenerationSpec.from_dict(s.to_dict()) == s and s.to_dict()["extra"]["guide"] == [1, 2]
    assert "extra" not in GenerationSpec(**base).to_dict()  # older records read the same

    @dataclass(frozen=True, kw_only=True)
    class MySpec(GenerationSpec):
        strength_curve: str = "linear"

    m = MySpec(**base, strength_curve="cosine")
    assert MySpec.from_dict(m.to_dict()) == m
    with pytest.raises(ConfigError, match="strength_curve"):
        GenerationSpec.from_dict(m.to_dict())  # the base class names what it does not know
    with pytest.raises(ConfigError, match="JSON values"):
        GenerationSpec(**base, extra={"bad": object()})


def test_episode_loras_and_learned_words_fit_and_generate_on_sdxl(tmp_path):
    """Both fits go through the family's own prompt encoding and network call, so they run on
    SDXL (pooled embeddings, time ids): the LoRA on its UNet, a word in both text encoders
    (the vector is their rows concatenated), and a word learned on another model is refused."""
    from genie_plugin.diffusion import SamplerConfig, load_generator
    from genie_plugin.diffusion.episode_lora import AdaptedModel
    from tests.families import tiny

    xl = load_generator(str(tiny.saved(tiny.sdxl(), tmp_path / "sdxl")), device="cpu",
                        sampler=SamplerConfig(steps=4))  # fmt: skip
    s = create_strategy("datadream", fit_steps=2)
    ep, images = _episode(8)
    specs = _plan(s, ep, images, FitContext(xl, FitStore(tmp_path / "fits")))
    fit = s._fits[("toy", 8)]
    it = SampleItem(specs[0].prompt, 1.0, specs[0].seed)
    adapted = AdaptedModel(xl, fit["lora_state"], fit["lora_config"], fit["lora_key"])
    a, b = adapted.generate([it])[0], xl.generate([it])[0]
    assert a.size == b.size and np.abs(np.asarray(a, int) - np.asarray(b, int)).max() > 0
    words = _plan(create_strategy("da_fusion", fit_steps=2), ep, images, FitContext(xl, None))
    (word,) = tokens.tokens_in([words[0].prompt])
    dims = [xl.parts[k].get_input_embeddings().weight.shape[1]
            for k in ("text_encoder", "text_encoder_2")]  # fmt: skip
    assert tokens._BANK[word].numel() == sum(dims)
    w_it = SampleItem(words[0].prompt, 1.0, 5)
    named = SampleItem(f"a photo of a {words[0].target_class}.", 1.0, 5)
    a, b = xl.generate([w_it, named])
    assert np.abs(np.asarray(a, int) - np.asarray(b, int)).max() > 0
    sd_word = tokens.learn([torch.zeros(dims[0] + 1)])[0]  # no SDXL word has this length
    with pytest.raises(ConfigError, match="another model"):
        xl.generate([SampleItem(f"a photo of a {sd_word}.", 1.0, 5)])


def test_a_filter_keeps_exactly_the_highest_scored_per_class(gen, monkeypatch):
    """With a judge whose scores are known (P(target) from the output's seed), the kept images
    are the top half of each class, and its record says so; a CLIP scorer (zero-shot over the
    episode's names) is used the same way, and without open_clip it says what to install."""
    from genie_plugin.strategies import filtered
    from genie_plugin.strategies.base import RenderContext

    seeds = {}

    class Fixed:  # P(target) = a seeded number per image, matched back through its pixels
        classes = ("cat", "dog", "fox")

        def probs(self, images):
            return np.array([[seeds[im.tobytes()]] * 3 for im in images])

    class Zero(Fixed):
        def zero_shot(self, images, names):
            assert names == ["cat", "dog", "fox"]
            return self.probs(images)

    ep, images = _episode(2)
    for judge in (Fixed(), Zero()):
        monkeypatch.setattr(filtered, "load_scorer", lambda *a, j=judge, **k: j)
        s = create_strategy("filtered", inner="text2image", keep=0.5)
        specs = s.plan(ep, torch.Generator().manual_seed(0))
        made = s.inner.render(specs, RenderContext(gen, images))
        for g in made:
            seeds[g.image.tobytes()] = (g.record["seed"] % 997) / 997
        kept = s.render(specs, RenderContext(gen, images))
        assert len(kept) == len(made) // 2 == 6
        for c in range(3):
            scores = sorted(((g.record["seed"] % 997) / 997 for g in made if g.label == c),
                            reverse=True)  # fmt: skip
            mine = sorted((g.record["filter"]["score"] for g in kept if g.label == c), reverse=True)
            assert mine == pytest.approx(scores[:2], abs=1e-6)  # records round to 6 places
    with pytest.raises(ConfigError, match="open_clip"):
        filtered.ClipScorer("ViT-B-32", "openai")
