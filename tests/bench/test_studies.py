"""Shipped studies (issue 31): each runs end to end as a one-episode smoke (the real runs are
committed under benchmarks/results/studies/), and a study file is checked before any work."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from genie_cli.main import app
from genie_plugin.bench.study import load_study, study_names, summarise
from genie_plugin.errors import ConfigError


@pytest.mark.parametrize("name", study_names())
def test_every_shipped_study_runs_as_a_smoke_and_summarises_every_comparison(name, tmp_path):
    out = tmp_path / name
    r = CliRunner().invoke(app, ["bench", "study", name, "--smoke", "--out", str(out),
                                 "--cache", str(tmp_path / "cache")])  # fmt: skip
    assert r.exit_code == 0, r.output
    s = json.loads((out / "summary.json").read_text())
    st = load_study(name)
    scn = st.make_scenario(smoke=True)
    assert s["episodes"] == 1 and not s["failed"]
    assert {t["strategy"] for t in s["strategies"]} == set(scn.labels)
    assert [(c["a"], c["b"]) for c in s["comparisons"]] == list(st.comparisons)
    assert all(c["delta"] is not None and c["separated"] is None for c in s["comparisons"])
    assert (out / "summary.md").read_text().startswith(f"### {name}")


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
