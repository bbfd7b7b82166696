"""One meaning of r across families: ``ratio_meaning="level"`` makes r the start noise level
(t = T·r; σ = r on flow models), so on a 4-step model GeNIe-Ada's grid r 0.5…0.9 gives five
distinct start levels and five distinct images, where diffusers' strength collapses them onto
two start steps. Every manifest record states the level reached (issue: model families)."""

from __future__ import annotations

import pytest

from genie_plugin.diffusion import load_generator
from genie_plugin.diffusion.sampler import SampleItem, sample, start_level
from genie_plugin.diffusion.schedulers import schedule_plan
from tests.families.test_equivalence import model

GRID = (0.5, 0.6, 0.7, 0.8, 0.9)


@pytest.fixture(scope="module")
def embedded():
    return load_generator("embedded", device="cpu").with_sampler(steps=4)


def _candidates(gen, image):
    return sample(gen, [SampleItem("a photo of a circle.", r, 7, image) for r in GRID])


def test_strength_collapses_a_4_step_grid_and_level_keeps_five_distinct(embedded, images):
    strength = _candidates(embedded, images[0])
    level_gen = embedded.with_sampler(ratio_meaning="level")
    level = _candidates(level_gen, images[0])
    assert len({im.tobytes() for im in strength}) < 5  # r -> start step: 2 or 3 steps only
    assert len({im.tobytes() for im in level}) == 5
    lv = [start_level(level_gen, r) for r in GRID]
    assert lv == sorted(lv) and len(set(lv)) == 5
    st = [start_level(embedded, r) for r in GRID]
    assert len(set(st)) < 5


def test_level_mode_starts_at_t_equal_T_r_and_follows_the_run_below_it(embedded):
    gen = embedded.with_sampler(ratio_meaning="level")
    plan = schedule_plan(gen)
    for r in GRID:
        ts = plan.item_timesteps(r)
        assert ts[0] == round(1000 * r)
        assert all(float(t) < ts[0] for t in ts[1:])
        assert list(ts[1:]) == [t for t in plan.timesteps if float(t) < ts[0]]
    assert plan.item_timesteps(1.0) == plan.timesteps  # r = 1: pure noise, the whole run


def test_flow_level_is_sigma_equal_r(tmp_path_factory, images):
    gen = model("sd3", tmp_path_factory).with_sampler(scheduler="flow-euler", steps=4)
    lv = gen.with_sampler(ratio_meaning="level")
    assert [start_level(lv, r) for r in GRID] == pytest.approx(list(GRID))
    # strength on a shifted flow model is not the noise level (SD3's shift 3, 10 steps:
    # r 0.3 starts at σ 0.46)
    assert start_level(gen.with_sampler(steps=10), 0.3) > 0.4
    out = sample(lv, [SampleItem("a photo of a cat.", r, 3, images[0]) for r in GRID])
    assert len({im.tobytes() for im in out}) == 5


def test_level_mode_mixed_batch_equals_each_item_alone(embedded, images):
    import numpy as np

    gen = embedded.with_sampler(ratio_meaning="level", steps=6)
    items = [
        SampleItem("a photo of a square.", r, 11 + i, images[i % 4]) for i, r in enumerate(GRID)
    ]
    mixed = sample(gen, items)
    for it, im in zip(items, mixed, strict=True):
        alone = sample(gen, [it])[0]
        assert np.abs(np.asarray(alone, int) - np.asarray(im, int)).max() <= 1


def test_manifest_records_state_the_start_level(embedded, images):
    from genie_plugin.strategies.base import RenderContext
    from genie_plugin.strategies.genie import GenieStrategy

    # the record helper on a spec: any diffusion strategy's record carries start_level
    strat = GenieStrategy()
    spec = type("S", (), {"to_dict": lambda self: {"ratio": 0.8}})()
    rec = strat.record(spec, RenderContext(model=embedded.with_sampler(ratio_meaning="level")))
    assert rec["start_level"] == start_level(embedded.with_sampler(ratio_meaning="level"), 0.8)
    assert 0 < rec["start_level"] < 1
