"""Strategies with parameters (issue 31, point 1): ``-s genie:ratio=0.6``, scenario objects
``{"name": "genie", "ratio": 0.6, "as": "genie@0.6"}`` and grids, validated by the strategy's
config, recorded in rows and manifests, sharing the augmentation cache with plain names."""

from __future__ import annotations

import pytest

from genie_plugin.bench.scenario import Scenario
from genie_plugin.errors import ConfigError, UnknownNameError
from genie_plugin.registry import expand_strategies, parse_strategy
from genie_plugin.seeding import cpu_generator
from genie_plugin.strategies.base import Episode, SupportItem


def test_cli_form_parses_to_the_config_and_a_stable_label():
    ref = parse_strategy("genie:ratio=0.6")
    assert (ref.name, ref.label, ref.options) == ("genie", "genie:ratio=0.6", {"ratio": 0.6})
    assert ref.create().config.ratio == 0.6
    ada = parse_strategy("genie_ada:ratios=[0.6,0.7,0.8],count=2")
    assert ada.create().config.ratios == (0.6, 0.7, 0.8) and ada.create().config.count == 2
    assert ada.label == "genie_ada:count=2,ratios=[0.6,0.7,0.8]"  # sorted keys: one label
    assert parse_strategy("genie").to_entry() == "genie"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("genie:rato=0.6", "unknown GenieConfig keys"),
        ("genie:ratio=1.5", "ratio"),
        ("genie:ratio", "NAME:KEY=VALUE"),
        ("genie:count=0", "count"),
        ("genie:count=1.5", "count"),
        ("mixup:alpha=-1", "alpha"),
    ],
)
def test_bad_values_and_keys_are_one_line_errors_naming_the_option(text, match):
    with pytest.raises(ConfigError, match=match) as exc:
        parse_strategy(text)
    assert str(exc.value).startswith(f"--strategy {text!r}") and "\n" not in str(exc.value)


def test_unknown_names_list_the_choices():
    with pytest.raises(UnknownNameError, match="known strategies: .*genie"):
        parse_strategy("genei:ratio=0.6")


def test_grids_expand_to_labelled_instances_and_labels_are_unique():
    refs = expand_strategies(["none", {"name": "genie", "grid": {"ratio": [0.5, 0.7]}},
                              {"name": "img2img", "ratio": 0.8, "as": "same@0.8"},
                              {"name": "text2image", "as": "t2i", "grid": {"count": [1, 2]}}])  # fmt: skip
    assert [r.label for r in refs] == ["none", "genie:ratio=0.5", "genie:ratio=0.7", "same@0.8",
                                       "t2i@count=1", "t2i@count=2"]  # fmt: skip
    with pytest.raises(ConfigError, match="is listed 2 times"):
        expand_strategies(["genie:ratio=0.6", {"name": "genie", "ratio": 0.6}])
    with pytest.raises(ConfigError, match="grid"):
        expand_strategies([{"name": "genie", "grid": {"ratio": []}}])
    with pytest.raises(ConfigError, match="both"):
        expand_strategies([{"name": "genie", "ratio": 0.6, "grid": {"ratio": [0.5]}}])
    with pytest.raises(ConfigError, match='"as"'):
        expand_strategies([{"name": "genie", "as": "a b/c"}])


def test_scenario_round_trip_keeps_instances_and_plain_names_unchanged():
    scn = Scenario.from_dict({"strategies": ["none", "genie",
                                             {"name": "genie", "grid": {"ratio": [0.5, 0.6]}}]})  # fmt: skip
    assert scn.labels == ("none", "genie", "genie:ratio=0.5", "genie:ratio=0.6")
    d = scn.to_dict()
    assert d["strategies"][:2] == ["none", "genie"]  # plain names stay plain strings
    assert Scenario.from_dict(d) == scn and Scenario.from_dict(d).to_dict() == d
    assert scn.ref("genie:ratio=0.5").create().config.ratio == 0.5
    with pytest.raises(ConfigError, match=r"scenario key strategies\[0\]"):
        Scenario.from_dict({"strategies": [{"name": "genie", "ratio": "high"}]})


def _episode(k=2):
    support = tuple(SupportItem(f"c{c}-{i}", c) for c in range(3) for i in range(k))
    return Episode(
        class_names=("a", "b", "c"), support=support, dataset="d", index=4, seed=9, shots=k
    )


def test_count_multiplies_the_budget_and_keeps_the_first_copies_seeds():
    ep = _episode()
    rng = cpu_generator(0)
    for name in ("genie", "img2img", "text2image", "genie_ada"):
        one = parse_strategy(name).create().plan(ep, rng)
        four = parse_strategy(f"{name}:count=4").create().plan(ep, rng)
        assert len(four) == 4 * len(one) == 4 * 3 * ep.budget_per_class
        # ×1 is today's plan, and its specs are among ×4's: the same images, shared in the cache
        assert {s.seed for s in one} <= {s.seed for s in four}
        assert len({s.seed for s in four}) == len(four)  # every copy its own seed


def test_a_parameterised_instance_shares_cache_keys_with_its_plain_equal():
    ep = _episode()
    rng = cpu_generator(0)
    plain = parse_strategy("genie").create().plan(ep, rng)
    same = parse_strategy("genie:ratio=0.8").create().plan(ep, rng)
    other = parse_strategy("genie:ratio=0.6").create().plan(ep, rng)
    key = lambda s: (s.prompt, s.ratio, s.seed, s.source_id)  # noqa: E731 - what the key reads
    assert [key(s) for s in plain] == [key(s) for s in same]
    assert [(s.prompt, s.seed, s.source_id) for s in other] == [
        (s.prompt, s.seed, s.source_id) for s in plain]  # fmt: skip


def test_rows_record_instances_and_share_the_cache_with_plain_names(tmp_path):
    import json

    from typer.testing import CliRunner

    from genie_cli.main import app
    from genie_plugin.bench.runner import run_scenario

    base = dict(name="p", episodes=1, steps=4, model="tiny-random", queries=4)
    cache = tmp_path / "cache"
    first = run_scenario(Scenario(**base, strategies=("genie",)), cache_dir=cache, device="cpu")
    assert first[0]["images_generated"] > 0 and "strategy_name" not in first[0]
    scn = Scenario(**base, strategies=("genie:ratio=0.8", {"name": "genie", "ratio": 0.6,
                                                            "as": "genie@0.6"}))  # fmt: skip
    rows = {r["strategy"]: r for r in run_scenario(scn, cache_dir=cache, device="cpu")}
    same, other = rows["genie:ratio=0.8"], rows["genie@0.6"]
    # the same images as plain "genie": every one served by the cache, the same accuracy
    assert (same["images_generated"], same["cache_hits"]) == (0, first[0]["images_generated"])
    assert same["episode_accuracies"] == first[0]["episode_accuracies"]
    assert other["images_generated"] == first[0]["images_generated"]  # another r: new images
    assert (other["strategy_name"], other["strategy_params"]) == ("genie", {"ratio": 0.6})
    assert other["strategy_config"]["ratio"] == 0.6
    # the command line: -s NAME:KEY=VALUE, and a bad value stops before any work in one line
    out = tmp_path / "r.jsonl"
    r = CliRunner().invoke(app, ["bench", "run", "-s", "genie:ratio=0.6", "--episodes", "1",
                                 "--model", "tiny-random", "--steps", "4", "--out", str(out),
                                 "--cache", str(cache)])  # fmt: skip
    assert r.exit_code == 0, r.output
    row = json.loads(out.read_text().splitlines()[0])
    assert row["strategy"] == "genie:ratio=0.6" and row["strategy_params"] == {"ratio": 0.6}
    bad = CliRunner().invoke(app, ["bench", "run", "-s", "genie:ratio=2", "--episodes", "1",
                                   "--out", str(tmp_path / "b.jsonl")])  # fmt: skip
    assert bad.exit_code == 2 and "ratio" in bad.output and not (tmp_path / "b.jsonl").exists()
