"""The benchmark runner end to end on the shapes dataset (tiny generator, shipped backbone)."""

import json

import pytest
from typer.testing import CliRunner

from genie_cli.main import app  # noqa: E402
from genie_plugin.bench.runner import run_scenario  # noqa: E402
from genie_plugin.bench.scenario import Scenario  # noqa: E402


def _scenario(**kw):
    base = dict(
        name="t",
        episodes=2,
        steps=4,
        model="tiny-random",
        queries=4,
        strategies=("none", "weak", "genie", "bogus_strategy"),
    )
    return Scenario(**{**base, **kw})


def test_rows_share_episodes_and_failures_are_rows(tmp_path):
    rows = run_scenario(_scenario(), cache_dir=tmp_path / "cache", device="cpu")
    by = {r["strategy"]: r for r in rows}
    assert len({r["episodes_hash"] for r in rows}) == 1
    for name in ("none", "weak", "genie"):
        assert by[name]["status"] == "ok" and 0 <= by[name]["mean"] <= 100
        assert by[name]["ci95"] >= 0
    assert by["genie"]["images_generated"] == 2 * 5 * 4  # 2 episodes × 5 classes × (N-1)K
    # cost: r = 0.8 runs 3 of 4 steps, two UNet rows per step under guidance
    cfg_rows = 2 if by["genie"]["model"]["guidance_scale"] > 1 else 1
    assert by["genie"]["unet_rows"] == 40 * 3 * cfg_rows and by["none"]["unet_rows"] == 0
    eps = by["genie"]["episode_accuracies"]  # per episode, for paired comparisons
    assert len(eps) == 2 and abs(sum(eps) / 2 - by["genie"]["mean"]) < 0.01
    assert (
        by["bogus_strategy"]["status"] == "failed"
        and "unknown strategy" in by["bogus_strategy"]["error"]
    )
    # a second run reads the cache and gives identical numbers; two bad entries (a truncated
    # PNG, a readable PNG whose content is not what its manifest hash says) are regenerated
    pngs = sorted((tmp_path / "cache").glob("??/*.png"))
    pngs[0].write_bytes(pngs[0].read_bytes()[:100])
    pngs[1].write_bytes(pngs[2].read_bytes())
    again = {
        r["strategy"]: r
        for r in run_scenario(
            _scenario(strategies=("genie",)), cache_dir=tmp_path / "cache", device="cpu"
        )
    }
    assert again["genie"]["status"] == "ok"
    assert again["genie"]["cache_repaired"] == 2 and by["genie"]["cache_repaired"] == 0
    assert again["genie"]["images_generated"] == 2 and again["genie"]["cache_hits"] == 38
    assert again["genie"]["mean"] == by["genie"]["mean"]
    assert again["genie"]["unet_rows"] == by["genie"]["unet_rows"]  # cost ignores the cache


def test_cli_bench_run_and_leaderboard(tmp_path):
    scn = tmp_path / "s.json"
    scn.write_text(json.dumps(_scenario(strategies=("none", "weak", "genie")).to_dict()))
    res = CliRunner().invoke(
        app,
        [
            "bench",
            "run",
            str(scn),
            "--out",
            str(tmp_path / "r.jsonl"),
            "--cache",
            str(tmp_path / "c"),
            "--device",
            "cpu",
        ],
    )
    assert res.exit_code == 0, res.output
    # each strategy's line: accuracy, wall time and the generation cost (UNet rows per episode)
    line = next(x for x in res.output.splitlines() if x.strip().startswith("genie:"))
    assert "UNet rows/episode = 1.00× genie" in line
    res = CliRunner().invoke(
        app, ["bench", "leaderboard", str(tmp_path / "r.jsonl"), "--out", str(tmp_path / "lb.md")]
    )
    assert res.exit_code == 0, res.output
    md = (tmp_path / "lb.md").read_text()
    assert "| weak |" in md and "| none |" in md
    assert (tmp_path / "lb.csv").read_text().count("\n") == 4
    assert "(1.00×) | ok |" in md  # genie's cost column
    from PIL import Image

    with Image.open(tmp_path / "lb.png") as im:
        im.load()


def test_bad_scenario_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"ways": 5, "wayz": 3}')
    res = CliRunner().invoke(app, ["bench", "run", str(bad)])
    assert res.exit_code == 2 and "unknown scenario keys ['wayz']" in res.output


def test_committed_scenarios_load_and_name_known_strategies():
    from genie_plugin.bench.scenario import SCENARIO_DIR, Scenario
    from genie_plugin.registry import REGISTRY

    files = sorted(SCENARIO_DIR.glob("*.json"))
    names = {p.stem for p in files}
    assert {"embedded-5w1s", "mini-5w1s", "mini-5w5s", "tiered-5w1s", "cub-5w5s"} <= names
    for p in files:
        scn = Scenario.load(p)
        assert scn.name == p.stem
        for s in scn.strategies:
            REGISTRY.get(s)


def test_leaderboard_paired_delta_to_none():
    from genie_plugin.bench.leaderboard import render_csv, render_markdown
    from genie_plugin.core.stats import mean_ci95, paired_diff_ci95

    common = dict(
        scenario="s", dataset="d", split="x", backbone="b", ways=5, shots=1, episodes=4,
        status="ok", episodes_hash="sha256:1",
    )  # fmt: skip
    none = [50.0, 60.0, 70.0, 80.0]
    genie = [55.0, 62.0, 71.0, 84.0]  # better on every episode
    rows = [
        {**common, "strategy": "none", "mean": 65.0, "ci95": 9.0, "episode_accuracies": none},
        {**common, "strategy": "genie", "mean": 68.0, "ci95": 9.5, "episode_accuracies": genie},
        {**common, "strategy": "old", "mean": 60.0, "ci95": 9.0},  # no per-episode data
        {**common, "strategy": "other_eps", "mean": 61.0, "ci95": 9.0,
         "episodes_hash": "sha256:2", "episode_accuracies": genie},
    ]  # fmt: skip
    d, ci = paired_diff_ci95(genie, none)
    assert d == 3.0 and ci == mean_ci95([5.0, 2.0, 1.0, 4.0])[1]
    # the paired interval excludes 0 although the unpaired intervals overlap widely
    assert d - ci > 0 and ci < 9.0
    md = render_markdown(rows)
    assert f"| genie | 68.00 | 9.50 | +3.00 ± {ci:.2f} |" in md
    assert "| old | 60.00 | 9.00 | – |" in md  # same episodes, no per-episode data
    assert "| other_eps (other episodes: 4) | 61.00 | 9.00 | – |" in md  # marked, not paired
    assert "identical for every row" not in md and "2 different episode lists" in md
    assert "| none | 65.00 | 9.00 | – |" in md
    # cost column: per episode and × genie's; "–" for rows written before it was recorded
    costed = [{**r, "unet_rows": n} for r, n in zip(rows[:2], (0, 800), strict=True)]
    costed.append({**common, "strategy": "ada", "mean": 67.0, "ci95": 9.0, "unet_rows": 3500})
    md = render_markdown(costed + rows[2:])
    assert "| 200 (1.00×) | ok |" in md and "| 875 (4.38×) | ok |" in md
    assert "| none | 65.00 | 9.00 | – | 0 | 0 | ok |" in md
    assert "| old | 60.00 | 9.00 | – | 0 | – | ok |" in md
    csv_text = render_csv(rows)
    assert "genie,65" not in csv_text and f",3.0,{round(ci, 2)}," in csv_text
    with pytest.raises(ValueError, match="equal lengths"):
        paired_diff_ci95([1.0], [1.0, 2.0])


def test_compare_results_names_every_difference():
    from genie_plugin.bench.leaderboard import compare_results

    row = {"scenario": "s", "strategy": "genie", "status": "ok", "mean": 60.0, "ci95": 2.0}
    row["episode_accuracies"] = [50.0, 70.0]
    assert compare_results([row], [dict(row)]) == []
    changed = {**row, "mean": 60.5, "episode_accuracies": [50.0, 71.0]}
    assert compare_results([row], [changed]) == [
        "s/genie: mean committed 60.0, rerun 60.5",
        "s/genie: episode_accuracies: 1 of 2 entries differ",
    ]
    extra = {**row, "strategy": "none"}
    assert compare_results([row, extra], [row]) == ["s/none: in the committed results only"]


def test_compare_results_prefix_checks_the_first_episodes():
    from genie_plugin.bench.leaderboard import compare_results

    row = {"scenario": "s", "strategy": "genie", "status": "ok", "ways": 5, "shots": 1}
    full = {**row, "episodes": 3, "episode_accuracies": [50.0, 70.0, 60.0]}
    part = {**row, "episodes": 2, "episode_accuracies": [50.0, 70.0]}
    assert compare_results([full], [part], prefix=True) == []
    assert compare_results([full], [{**part, "episode_accuracies": [50.0, 71.0]}], prefix=True) == [
        "s/genie: episode_accuracies: 1 of the first 2 differ"
    ]
    assert compare_results([full], [{**part, "shots": 5}], prefix=True) == [
        "s/genie: shots committed 1, rerun 5"
    ]
    long = {**part, "episode_accuracies": [50.0, 70.0, 60.0, 1.0]}
    assert compare_results([full], [long], prefix=True) == [
        "s/genie: rerun has 4 episodes, committed 3"
    ]


def test_episode_i_is_the_same_in_a_run_of_any_length(tmp_path):
    """What check_leaderboard.sh's prefix check rests on: the first episode of a 1-episode run
    equals the first of a 2-episode run, for a generative and an Ada strategy."""
    from genie_plugin.bench.leaderboard import compare_results

    names = ("none", "genie", "genie_ada")
    two = run_scenario(_scenario(strategies=names), cache_dir=tmp_path / "a", device="cpu")
    one = run_scenario(
        _scenario(strategies=names, episodes=1), cache_dir=tmp_path / "b", device="cpu"
    )
    assert [len(r["episode_accuracies"]) for r in two] == [2, 2, 2]
    assert compare_results(two, one, prefix=True) == []
    # GeNIe-Ada's rows say which r it picked, one count per output; other rows carry no counts
    by = {r["strategy"]: r for r in two}
    counts = by["genie_ada"]["ada_r_star"]
    grid = [f"{r:g}" for r in by["genie_ada"]["strategy_config"]["ratios"]]
    assert sum(counts.values()) == 2 * 5 * 4  # 2 episodes × 5 targets × 4 sources
    assert by["genie_ada"]["images_generated"] > sum(counts.values())  # candidates, not picks
    assert set(counts) <= set(grid) and list(counts) == [g for g in grid if g in counts]
    assert "ada_r_star" not in by["genie"] and "ada_r_star" not in by["none"]
