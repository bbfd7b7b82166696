"""Shipped studies (issue 31): each runs end to end as a one-episode smoke (the real runs are
committed under benchmarks/results/studies/), and a study file is checked before any work."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from genie_cli.main import app
from genie_plugin.bench.study import (
    choose,
    load_study,
    study_names,
    summarise,
    variant_label,
)
from genie_plugin.errors import ConfigError


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One augmentation cache for every smoke: the studies share most images (GeNIe at r 0.8),
    as a real user's runs share one cache; CI pays for each image once."""
    return tmp_path_factory.mktemp("study-cache")


@pytest.mark.parametrize("name", study_names())
def test_every_shipped_study_runs_as_a_smoke_and_summarises_every_comparison(
    name, tmp_path, shared_cache
):
    out = tmp_path / name
    r = CliRunner().invoke(app, ["bench", "study", name, "--smoke", "--out", str(out),
                                 "--cache", str(shared_cache)])  # fmt: skip
    assert r.exit_code == 0, r.output
    s = json.loads((out / "summary.json").read_text())
    st = load_study(name)
    parts = s["variants"] if len(st.variants) > 1 else [{**s, "variant": ""}]
    assert [p["variant"] for p in parts] == [variant_label(v) for v in st.variants]
    ran = [p for p in parts if "skipped" not in p]
    assert ran, "every shipped study runs at least one variant on the embedded data"
    for part, v in zip(parts, st.variants, strict=True):
        if "skipped" in part:  # only for want of classes, and it says so
            assert "classes" in part["skipped"] and v.get("ways", 0) > 8
            continue
        scn = st.make_scenario(smoke=True, variant=v)
        assert part["episodes"] == 1 and not part["failed"]
        assert {t["strategy"] for t in part["strategies"]} == set(scn.labels)
        assert [(c["a"], c["b"]) for c in part["comparisons"]] == list(st.comparisons)
        assert all(c["delta"] is not None and c["separated"] is None for c in part["comparisons"])
        if st.select:  # the validation run picked one of the candidates
            assert part["selection"]["chosen"] in st.select["among"]
            assert part["selection"]["split"] == "validation"
            assert len(part["selection"]["curve"]) == len(st.select["among"])
        for want, got in zip(st.analyses, part.get("analyses", []), strict=True):
            assert got["kind"] == want["kind"] and got["rendered_episodes"] == 1
            base = out / got["folder"] if got["folder"] else out
            if got["kind"] == "pairs":  # equal-count bins over every output made from a source
                assert sum(b["n"] for b in got["bins"]) == got["outputs"] == 20
                d = [b["distance"] for b in got["bins"]]
                assert d == sorted(d) and got["farthest"][0]["distance"] >= d[-1]
            shown = got.get("farthest") or got.get("failures") or []
            for item in shown:  # every image the page links exists
                for path in [item.get("source"), item.get("image"), item.get("curve"),
                             *[c["src"] for c in item.get("strip", [])]]:  # fmt: skip
                    assert path is None or (base / path).is_file(), path
    assert (out / "summary.md").read_text().startswith(f"### {name}")
    assert (out / "index.html").is_file()


def test_pareto_front_and_paired_deltas_from_rows():
    st = load_study("ada-cost")
    row = lambda lab, accs, rows: {"strategy": lab, "status": "ok", "episodes": len(accs),  # noqa: E731
                                   "episode_accuracies": accs, "episodes_hash": "h",
                                   "mean": sum(accs) / len(accs), "ci95": 1.0,
                                   "unet_rows": rows}  # fmt: skip
    rows = [row("none", [50, 52, 54], 0), row("genie:ratio=0.8", [60, 61, 65], 300),
            row("genie_ada", [62, 64, 66], 1200), row("genie:ratio=0.5", [55, 57, 58], 150)]  # fmt: skip
    s = summarise(st, rows)
    assert s["pareto_front"] == ["none", "genie:ratio=0.5", "genie:ratio=0.8", "genie_ada"]
    c = next(c for c in s["comparisons"] if (c["a"], c["b"]) == ("genie_ada", "genie:ratio=0.8"))
    assert c["delta"] == pytest.approx(2.0) and c["separated"] is not None
    assert "genie_ada_lite" in s["failed"] or all(
        c["delta"] is None for c in s["comparisons"] if "genie_ada_lite" in (c["a"], c["b"])
    )


def test_bad_study_files_are_refused_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="shipped studies: .*hard-negatives"):
        load_study("no-such-study")
    bad = tmp_path / "s.json"
    bad.write_text(json.dumps({"question": "q", "scenario": {"strategies": ["none", "genie"]},
                               "comparisons": [["genie", "genie:ratio=0.6"]]}))  # fmt: skip
    with pytest.raises(ConfigError, match="comparison names 'genie:ratio=0.6'"):
        load_study(str(bad))
    bad.write_text("[]")
    with pytest.raises(ConfigError, match="not a study file"):
        load_study(str(bad))


def _row(lab, accs, rows=0, ways=5):
    return {"strategy": lab, "status": "ok", "episodes": len(accs), "episode_accuracies": accs,
            "episodes_hash": "h", "mean": sum(accs) / len(accs), "ci95": 1.0, "unet_rows": rows,
            "ways": ways}  # fmt: skip


def test_the_fixed_ratio_is_chosen_on_validation_and_compared_on_test_under_its_own_name():
    st = load_study("ada-cost")
    test = st.make_scenario(episodes=30)
    val = st.selection_scenario(test)
    assert val.split == "validation" and val.ways == 4 and val.episodes == 30
    assert val.labels == tuple(st.select["among"]) and val.name == test.name + "-validation"
    assert st.selection_scenario(st.make_scenario(smoke=True)).episodes == 1
    # ties go to the first listed; a failed candidate is left out of the curve
    vrows = [_row("genie:ratio=0.5", [50, 60], ways=4), _row("genie:ratio=0.6", [70, 60], ways=4),
             _row("genie:ratio=0.7", [60, 70], ways=4),
             {"strategy": "genie:ratio=0.8", "status": "failed"}]  # fmt: skip
    sel = choose(st, vrows)
    assert sel["chosen"] == "genie:ratio=0.6" and sel["ways"] == 4 and sel["episodes"] == 2
    assert [c["strategy"] for c in sel["curve"]] == ["genie:ratio=0.5", "genie:ratio=0.6",
                                                    "genie:ratio=0.7"]  # fmt: skip
    trows = [_row("none", [40, 41, 42]), _row("genie:ratio=0.6", [50, 53, 56], 200),
             _row("genie:ratio=0.8", [60, 60, 60], 220), _row("genie_ada", [55, 55, 59], 900)]  # fmt: skip
    s = summarise(st, trows, sel)
    c = next(c for c in s["comparisons"] if (c["a"], c["b"]) == ("genie_ada", "genie@val-best"))
    assert c["delta"] == pytest.approx(10 / 3, abs=0.01)  # against r 0.6's *test* row, not r 0.8's
    assert "genie@val-best" not in {t["strategy"] for t in s["strategies"]}
    assert s["selection"]["chosen"] == "genie:ratio=0.6"


def test_variants_name_their_scenarios_and_bad_selections_are_refused(tmp_path):
    st = load_study("more-classes")
    scns = [st.make_scenario(variant=v) for v in st.variants]
    assert [s.ways for s in scns] == [5, 8, 10, 20]
    assert scns[1].name == "study-more-classes-ways8" and len({s.name for s in scns}) == 4
    rd = load_study("r-datasets")
    assert [rd.make_scenario(variant=v).dataset for v in rd.variants] == ["shapes", "shapes-ctx"]
    bad = tmp_path / "s.json"
    base = {"question": "q", "scenario": {"based_on": "embedded-5w1s",
                                          "strategies": ["none", "genie"]}}  # fmt: skip
    bad.write_text(json.dumps({**base, "select": {"among": ["genie:ratio=0.6"], "as": "best"}}))
    with pytest.raises(ConfigError, match="select.among names 'genie:ratio=0.6'"):
        load_study(str(bad))
    bad.write_text(json.dumps({**base, "select": {"among": ["genie"]}}))
    with pytest.raises(ConfigError, match="select needs 'among'"):
        load_study(str(bad))
    bad.write_text(json.dumps({**base, "comparisons": [["best", "none"]]}))
    with pytest.raises(ConfigError, match="comparison names 'best'"):
        load_study(str(bad))


def test_a_real_dataset_needs_its_own_model_and_backbone(tmp_path):
    r = CliRunner().invoke(app, ["bench", "study", "more-classes", "--dataset", "mini-imagenet",
                                 "--out", str(tmp_path / "o")])  # fmt: skip
    assert r.exit_code == 2 and "pass --model and --backbone" in r.output


def _failures(ada_jumps):
    from genie_plugin.core.ada import is_flat

    return is_flat(ada_jumps)


def test_a_flat_curve_is_one_where_no_jump_stands_out():
    assert _failures([0.1, 0.1, 0.1, 0.1]) and _failures([0.1, 0.12, 0.1, 0.11])
    assert not _failures([0.05, 0.4, 0.05, 0.06])
    assert _failures([0.3]) and _failures([])


def test_the_study_page_in_a_real_browser(tmp_path, shared_cache):
    """The ada-failures smoke's page in headless Chromium: every image decodes, the tables
    show summary.json's numbers, each failure strip marks r*, no console error."""

    out = tmp_path / "af"
    r = CliRunner().invoke(app, ["bench", "study", "ada-failures", "--smoke", "--out", str(out),
                                 "--cache", str(shared_cache)])  # fmt: skip
    assert r.exit_code == 0, r.output
    s = json.loads((out / "summary.json").read_text())
    a = s["analyses"][0]
    assert a["pairs"] == 20 and a["flat"] + a["inconsistent"] >= len(a["failures"]) > 0
    from tests.browser import decoded_images, headless_chrome

    with headless_chrome() as driver:
        driver.get((out / "index.html").resolve().as_uri())
        n_img, decoded = decoded_images(driver)
        assert n_img > 10 and decoded == n_img
        shown = driver.execute_script(
            "return Array.from(document.querySelectorAll('table.strategies tbody tr'))"
            ".map(r => [r.dataset.strategy, r.cells[1].textContent.trim()]);"
        )
        assert dict(shown) == {t["strategy"]: f"{t['mean']:.2f}" for t in s["strategies"]}
        deltas = driver.execute_script(
            "return Array.from(document.querySelectorAll('table.comparisons tbody tr'))"
            ".map(r => r.cells[1].textContent.trim());"
        )
        assert deltas == [f"{c['delta']:+.2f}" for c in s["comparisons"]]
        chosen = driver.execute_script(
            "return Array.from(document.querySelectorAll('div.fail'))"
            ".map(f => f.querySelectorAll('figure.chosen').length);"
        )
        assert chosen == [1] * len(a["failures"])
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
