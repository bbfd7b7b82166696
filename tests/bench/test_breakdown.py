"""benchmarks/context/breakdown.py re-scores a finished board through the runner's own loop
(``runner.score_unit``): per-query results that add back up to the board's accuracies, or a
stop naming the episode that does not."""

import json
import subprocess
import sys
from pathlib import Path

from genie_plugin.bench.runner import run_scenario
from genie_plugin.bench.scenario import Scenario
from genie_plugin.io import write_jsonl

ROOT = Path(__file__).resolve().parents[2]

SCENARIO = {
    "name": "breakdown-test",
    "dataset": "shapes",
    "split": "novel",
    "backbone": "embedded",
    "model": "tiny-random",
    "episodes": 5,
    "ways": 3,
    "shots": 1,
    "queries": 4,
    "steps": 3,
    "real_views": 1,
    "view_size": 32,
    "strategies": ["none", "mixup", "genie"],
}


def _breakdown(tmp_path, results, episodes):
    return subprocess.run(
        [
            sys.executable, "benchmarks/context/breakdown.py", str(tmp_path / "scn.json"),
            str(results), "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "bd.json"),
            "--episodes", str(episodes),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_breakdown_adds_up_to_the_board_and_names_a_mismatch(tmp_path):
    (tmp_path / "scn.json").write_text(json.dumps(SCENARIO))
    rows = run_scenario(Scenario.from_dict(SCENARIO), cache_dir=tmp_path / "cache", device="cpu")
    results = tmp_path / "r.jsonl"
    write_jsonl(results, rows)
    res = _breakdown(tmp_path, results, 5)  # two units, the second partial
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads((tmp_path / "bd.json").read_text())
    assert out["episodes"] == 5
    assert set(out["strategies"]) == {"none", "genie"}  # soft labels are left out
    board = {r["strategy"]: r for r in rows}
    for s, groups in out["strategies"].items():
        assert groups["all"]["mean"] == board[s]["mean"]
    assert "genie: re-scored 5 episodes, equal to the board" in res.stdout

    board["genie"]["episode_accuracies"][3] += 25.0  # a board this run no longer gives
    write_jsonl(results, board.values())
    res = _breakdown(tmp_path, results, 5)
    assert res.returncode != 0 and "genie episode 3: re-scored" in res.stderr
