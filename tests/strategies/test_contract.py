"""Contract tests run over every registered strategy (as timm tests every model)."""

import dataclasses

import numpy as np
import pytest
import torch

from genie_plugin.registry import list_strategies
from genie_plugin.strategies.base import Episode, RenderContext, SupportItem
from tests.conftest import assert_same_pixels, make_image

WAYS, SHOTS = 3, 2


def _generative():
    from genie_plugin.registry import create_strategy

    return [n for n in list_strategies() if create_strategy(n).generative]


def _episode(seed=0):
    support = tuple(SupportItem(f"c{c}_s{k}", c) for c in range(WAYS) for k in range(SHOTS))
    return Episode(
        dataset="toy",
        index=4,
        class_names=("cat", "dog", "tabby_cat"),
        support=support,
        shots=SHOTS,
        seed=seed,
    )


def _ctx(gen):
    ep = _episode()
    images = {it.item_id: make_image(i) for i, it in enumerate(ep.support)}

    def embed(ims):  # deterministic toy backbone: mean colour + a few pixels
        return np.stack([np.asarray(im.resize((4, 4)), dtype=np.float64).ravel() for im in ims])

    return RenderContext(gen, images, embed=embed, max_batch=32)


def _gen(generator):
    return torch.Generator("cpu").manual_seed(generator)


_FIT_MODEL = []


def _fit_model():
    """A tiny SD of the fitting strategies' own (their fits add words and an adapter slot to
    the modules they train; the session's tiny model stays as loaded)."""
    if not _FIT_MODEL:
        from genie_plugin.diffusion import SamplerConfig, load_generator

        _FIT_MODEL.append(load_generator("tiny-random", device="cpu",
                                         sampler=SamplerConfig(steps=4)))  # fmt: skip
    return _FIT_MODEL[0]


def _strategy(name):
    """The registered strategy; peers that fit per episode with few fit steps (a contract
    test, not a fit)."""
    from genie_plugin.registry import create_strategy

    s = create_strategy(name)
    if "fit_steps" in s.config.to_dict():
        s = create_strategy(name, fit_steps=2)
    return s


def _plan(s, ep, rng):
    """``plan``, through the fitting step for the strategies that have one."""
    if not s.fits:
        return s.plan(ep, rng)
    from genie_plugin.strategies.base import FitContext

    images = {it.item_id: make_image(i) for i, it in enumerate(ep.support)}
    return s.plan_episode(ep, rng, images, None, FitContext(_fit_model(), None))


def _factor(s) -> int:
    """How many images a strategy plans per image it returns (a filter over-generates)."""
    return getattr(s, "factor", 1)


class _Judge:
    """A fake oracle for the filters' contract: P(target) from the image's mean brightness."""

    classes = ("cat", "dog", "tabby_cat")

    def probs(self, images):
        v = np.array([np.asarray(im, dtype=np.float64).mean() / 255 for im in images])
        return np.stack([v, 1 - v, np.full_like(v, 0.5)], axis=1)


@pytest.fixture(scope="module")
def gen(tiny_gen):
    return tiny_gen.with_sampler(steps=4)


def test_non_generative_baselines_plan_nothing():
    from genie_plugin.registry import create_strategy

    for name in set(list_strategies()) - set(_generative()):
        assert create_strategy(name).plan(_episode(), _gen(0)) == []
    assert {"none", "weak"} <= set(list_strategies()) - set(_generative())


@pytest.mark.parametrize("name", _generative())
def test_plan_is_deterministic_and_budgeted(name):

    from genie_plugin.diffusion.tokens import tokens_in

    s = _strategy(name)
    ep = _episode()
    a, b = _plan(s, ep, _gen(0)), _plan(s, ep, _gen(0))
    assert a == b
    assert len(a) == WAYS * ep.budget_per_class * _factor(s)
    per_class = {c: sum(sp.label == c for sp in a) for c in range(WAYS)}
    assert set(per_class.values()) == {(WAYS - 1) * SHOTS * _factor(s)}
    for sp in a:
        assert sp.target_class == ep.class_names[sp.label]
        # the class's name, or the word learned for it on this episode (a peer's fit)
        assert ep.class_names[sp.label].replace("_", " ") in sp.prompt or tokens_in([sp.prompt])
    # a different run seed changes the per-item seeds
    assert [sp.seed for sp in _plan(s, _episode(seed=1), _gen(0))] != [sp.seed for sp in a]


@pytest.mark.parametrize("name", _generative())
def test_render_is_deterministic_labelled_and_recorded(name, gen, monkeypatch):
    from genie_plugin.strategies import filtered

    monkeypatch.setattr(filtered, "load_scorer", lambda *a, **k: _Judge())
    s = _strategy(name)
    if s.fits:
        gen = _fit_model()
    specs = _plan(s, _episode(), _gen(0))[:3]
    out1 = s.render(specs, _ctx(gen))
    out2 = s.render(specs, _ctx(gen))
    assert len(out1) == max(1, round(len(specs) / _factor(s)))
    by_seed = {sp.seed: sp for sp in specs}  # a filter returns a subset of its specs
    for r1, r2 in zip(out1, out2, strict=True):
        spec = by_seed[r1.record["seed"]]
        assert r1.image.tobytes() == r2.image.tobytes()
        assert r1.label == spec.label
        arr = np.asarray(r1.image)
        # a NaN latent decodes to one flat colour: a real output varies
        assert arr.dtype == np.uint8 and arr.std() > 1.0
        rec = r1.record
        for key in (
            "strategy",
            "strategy_config",
            "model",
            "seed",
            "prompt",
            "ratio",
            "source_id",
            "source_class",
            "target_class",
            "label",
        ):
            assert key in rec, key
        assert rec["model"]["fingerprint"] == gen.fingerprint
        assert rec["strategy"] == name


@pytest.mark.parametrize("name", list_strategies())
def test_config_round_trip(name):
    from genie_plugin.errors import ConfigError
    from genie_plugin.registry import create_strategy

    s = create_strategy(name)
    d = s.config.to_dict()
    assert list(d) == sorted(d)
    assert type(s.config).from_dict(d) == s.config
    with pytest.raises(ConfigError, match="unknown"):
        type(s.config).from_dict({**d, "bogus": 1})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.config.prompt = "x"  # type: ignore[misc]


def test_genie_semantics():
    from genie_plugin.registry import create_strategy

    specs = create_strategy("genie").plan(_episode(), _gen(0))
    assert all(sp.ratio == 0.8 for sp in specs)
    assert all(sp.source_class != sp.target_class for sp in specs)
    # every support image of the other classes is edited once per target
    for c in range(WAYS):
        srcs = sorted(sp.source_id for sp in specs if sp.label == c)
        assert srcs == sorted(f"c{o}_s{k}" for o in range(WAYS) if o != c for k in range(SHOTS))


def test_text2image_and_img2img_semantics():
    from genie_plugin.registry import create_strategy

    t2i = create_strategy("text2image").plan(_episode(), _gen(0))
    assert all(sp.ratio == 1.0 and sp.source_id is None for sp in t2i)
    assert len({sp.seed for sp in t2i}) == len(t2i)
    lo = create_strategy("img2img").plan(_episode(), _gen(0))
    hi = create_strategy("img2img_high").plan(_episode(), _gen(0))
    assert {sp.ratio for sp in lo} == {0.3} and {sp.ratio for sp in hi} == {0.7}
    assert all(sp.source_class == sp.target_class for sp in lo)
    assert len({sp.seed for sp in lo}) == len(lo)


def test_genie_ada_batches_five_ratios_with_shared_noise_and_picks_from_curve(gen):
    from genie_plugin.diffusion.sampler import SampleItem
    from genie_plugin.registry import create_strategy

    s = create_strategy("genie_ada")
    ctx = _ctx(gen)
    spec = s.plan(_episode(), _gen(0))[0]
    out = s.render([spec], ctx)[0]
    ada = out.record["ada"]
    assert ada["ratios"] == [0.5, 0.6, 0.7, 0.8, 0.9]
    assert out.record["ratio"] == ada["r_star"] in (0.6, 0.7, 0.8, 0.9)
    assert len(ada["projections"]) == 5 and len(ada["jumps"]) == 4
    assert ada["prototype"] == "support"
    # candidates equal five separate runs with the same seed (shared ε)
    src = ctx.images[spec.source_id]
    for r, cand in zip(spec.ratios, out.candidates, strict=True):
        alone = gen.generate([SampleItem(spec.prompt, r, spec.seed, src)])[0]
        assert_same_pixels(alone, cand)
    # the chosen image is the candidate at r*
    assert out.image is out.candidates[ada["index"]]
    # GeNIe at r* with the same seed makes the same image (seeds do not depend on strategy)
    g = create_strategy("genie", ratio=ada["r_star"]).plan(_episode(), _gen(0))[0]
    assert g.seed == spec.seed


def test_genie_ada_without_embedder_is_a_clear_error(gen):
    from genie_plugin.errors import ConfigError
    from genie_plugin.registry import create_strategy

    s = create_strategy("genie_ada")
    ctx = _ctx(gen)
    ctx.embed = None
    with pytest.raises(ConfigError, match="backbone"):
        s.render(s.plan(_episode(), _gen(0))[:1], ctx)


@pytest.mark.parametrize(
    ("name", "kw", "probe_change"),
    [
        ("genie_ada_fast", {"probe_steps": 2}, {"steps": 2}),  # the fixture samples 4 steps
        ("genie_ada_lite", {"probe_item_steps": 2}, {"max_item_steps": 2}),
        ("genie_ada", {"probe_steps": 3, "probe_item_steps": 1}, {"steps": 3, "max_item_steps": 1}),
    ],
)
def test_genie_ada_probes_select_on_probe_candidates_and_sample_r_star_at_full_steps(
    gen, name, kw, probe_change
):
    from genie_plugin.core.ada import select_ratio, unit_rows
    from genie_plugin.diffusion.sampler import SampleItem
    from genie_plugin.registry import create_strategy

    s = create_strategy(name, **kw)
    ctx = _ctx(gen)
    spec = s.plan(_episode(), _gen(0))[0]
    out = s.render([spec], ctx)[0]
    ada = out.record["ada"]
    assert ada.get("probe_steps") == probe_change.get("steps")
    assert ada.get("probe_item_steps") == probe_change.get("max_item_steps")
    src = ctx.images[spec.source_id]
    probe = gen.with_sampler(**probe_change)
    for r, cand in zip(spec.ratios, out.candidates, strict=True):
        assert_same_pixels(probe.generate([SampleItem(spec.prompt, r, spec.seed, src)])[0], cand)
    # r* is the paper's rule applied to the probe candidates' embeddings
    protos = [ctx.images[p] for p in spec.prototype_ids]
    f = unit_rows(ctx.embed([*out.candidates, src, *protos]))
    sel = select_ratio(spec.ratios, f[:5], f[5], f[6:].mean(0))
    assert out.record["ratio"] == ada["r_star"] == sel.ratio
    # the output is sampled at r* with the full step count and the pair's seed (same ε)
    full = gen.generate([SampleItem(spec.prompt, sel.ratio, spec.seed, src)])[0]
    assert_same_pixels(full, out.image)
    assert not np.array_equal(np.asarray(full), np.asarray(out.candidates[sel.index]))


def test_genie_ada_probe_as_fine_as_the_output_is_the_paper_method(gen):
    from genie_plugin.registry import create_strategy

    ctx = _ctx(gen)
    spec = create_strategy("genie_ada").plan(_episode(), _gen(0))[0]
    exact = create_strategy("genie_ada").render([spec], ctx)[0]
    for name, kw in (("genie_ada_fast", {"probe_steps": 4}), ("genie_ada_lite", {})):
        fast = create_strategy(name, **kw).render([spec], ctx)[0]  # lite: 5 steps per candidate
        assert fast.record["ada"] == {**exact.record["ada"]}
        assert_same_pixels(exact.image, fast.image)


@pytest.mark.parametrize("bad", [1, 0, True, 2.5, "10"])
def test_genie_ada_probe_steps_must_be_an_integer_of_at_least_two(bad):
    from genie_plugin.errors import ConfigError
    from genie_plugin.registry import create_strategy

    with pytest.raises(ConfigError, match="probe_steps"):
        create_strategy("genie_ada", probe_steps=bad)
    if bad != 1:  # one step per candidate is a valid (if crude) probe
        with pytest.raises(ConfigError, match="probe_item_steps"):
            create_strategy("genie_ada", probe_item_steps=bad)


def test_genie_ada_planned_image_steps_match_progress(gen):
    from genie_plugin.registry import create_strategy

    probes = {"genie_ada_fast": {"steps": 2}, "genie_ada_lite": {"max_item_steps": 2}}
    for name, kw in (
        ("genie_ada", {}),
        ("genie_ada_fast", {"probe_steps": 2}),
        ("genie_ada_lite", {"probe_item_steps": 2}),
    ):
        s = create_strategy(name, **kw)
        ctx = _ctx(gen)
        done = []
        ctx.progress = done.append
        specs = s.plan(_episode(), _gen(0))[:3]
        out = s.render(specs, ctx)
        planned = s.planned_image_steps(gen, specs)
        if name == "genie_ada":
            assert sum(done) == planned
        else:  # r* is not known in advance: the plan takes the grid's mean for the final pass
            from genie_plugin.diffusion.sampler import SampleItem, total_image_steps

            cand = [SampleItem(sp.prompt, r, sp.seed) for sp in specs for r in sp.ratios]
            finals = [SampleItem("x", o.record["ratio"], 0) for o in out]
            actual = total_image_steps(gen.with_sampler(**probes[name]), cand) + total_image_steps(
                gen, finals
            )
            assert sum(done) == actual
            assert abs(planned - actual) <= len(specs) * gen.sampler.steps


@pytest.mark.parametrize("name", list_strategies())
def test_declared_sources_are_the_planned_sources(name):
    """``sources`` (what the CLI and plugin consult instead of names) says what ``plan`` does:
    "other" - every source is another class's image, "same" - the target class's own, "none" -
    no source (pure noise, or nothing generated)."""

    strat = _strategy(name)
    assert strat.sources in ("other", "same", "none")
    specs = _plan(strat, _episode(), torch.Generator().manual_seed(0))
    by_id = {it.item_id: it.label for it in _episode().support}
    kinds = {
        "none" if s.source_id is None else ("same" if by_id[s.source_id] == s.label else "other")
        for s in specs
    }
    assert kinds <= {strat.sources}, (name, kinds)
    assert bool(specs) == strat.generative


@pytest.mark.parametrize("name", ["genie", "genie_ada", "text2image", "img2img", "img2img_high"])
def test_planned_image_steps_are_the_progress_totals(gen, name):
    """The progress bar's total (planned from the schedule plan) is what render then counts,
    also for a CLI episode whose target has no real images (GeNIe-Ada's Text2Image prototypes)."""
    from genie_plugin.augment.outputs import cli_episode
    from genie_plugin.registry import create_strategy

    s = create_strategy(name)
    cli = cli_episode(
        name, ["a.png", "b.png"], "star", source_class="heart", same_class=s.sources == "same"
    )
    for episode, images in (
        (_episode(), _ctx(gen).images),
        (cli, {"a.png": make_image(1), "b.png": make_image(2)}),
    ):
        ctx = _ctx(gen)
        ctx.images = images
        done = []
        ctx.progress = done.append
        specs = s.plan(episode, _gen(0))[:4]
        s.render(specs, ctx)
        assert sum(done) == s.planned_image_steps(gen, specs) > 0
