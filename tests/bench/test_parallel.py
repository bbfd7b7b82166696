"""bench run --jobs N: episode blocks split across one-thread processes give the rows a
one-thread single process gives, bit for bit, generation counts and cache reuse included."""

import json

import pytest
import torch
from typer.testing import CliRunner

from genie_cli.main import app

STRATEGIES = ("none", "weak", "genie", "genie_ada", "genie_ada_lite")


def _args(tmp_path, name, *extra, episodes=2, strategies=STRATEGIES[:3]):
    return [
        "bench", "run", "--model", "tiny-random", "--steps", "4", "--episodes", str(episodes),
        *(a for s in strategies for a in ("-s", s)), "--device", "cpu",
        "--out", str(tmp_path / f"{name}.jsonl"), "--cache", str(tmp_path / f"{name}-cache"),
        *extra,
    ]  # fmt: skip


def _rows(path):
    return {json.loads(x)["strategy"]: json.loads(x) for x in path.read_text().splitlines()}


def test_two_jobs_give_the_one_thread_rows(tmp_path):
    """Five episodes: two blocks, one per worker. GeNIe-Ada reuses GeNIe's r = 0.8 images and
    genie_ada_lite GeNIe-Ada's candidates: the same cache hits as in one process, whichever
    worker renders a block, and every row field but the time equal."""
    args = dict(episodes=5, strategies=STRATEGIES)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        r1 = CliRunner().invoke(app, _args(tmp_path, "one", **args))
    finally:
        torch.set_num_threads(threads)
    assert r1.exit_code == 0, r1.output
    r2 = CliRunner().invoke(app, _args(tmp_path, "two", "--jobs", "2", **args))
    assert r2.exit_code == 0, r2.output
    one, two = _rows(tmp_path / "one.jsonl"), _rows(tmp_path / "two.jsonl")
    assert set(one) == set(two) == set(STRATEGIES)
    for s in STRATEGIES:
        assert two[s]["status"] == "ok"
        for f in set(one[s]) | set(two[s]):
            if f not in ("wall_s",):
                assert two[s][f] == one[s][f], (s, f)
    assert one["genie_ada"]["cache_hits"] == one["genie"]["images_generated"] > 0
    assert one["genie_ada_lite"]["cache_hits"] > 0
    assert "genie:" in r2.output and "none:" in r2.output  # the table, in scenario order
    assert r2.output.index("none:") < r2.output.index("genie:")
    # a rerun over the warm cache: nothing generated, the same accuracies
    r3 = CliRunner().invoke(app, _args(tmp_path, "two", "--jobs", "2", **args))
    assert r3.exit_code == 0, r3.output
    warm = _rows(tmp_path / "two.jsonl")
    for s in STRATEGIES:
        assert warm[s]["episode_accuracies"] == one[s]["episode_accuracies"]
        assert warm[s]["images_generated"] == 0


def test_jobs_auto_and_bad_values(tmp_path, monkeypatch):
    from genie_plugin.bench.parallel import auto_jobs

    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert auto_jobs("cpu") == 3
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert auto_jobs("cpu") == 8
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert auto_jobs(None) == 1
    monkeypatch.undo()
    r = CliRunner().invoke(app, _args(tmp_path, "bad", "--jobs", "many"))
    assert r.exit_code == 2 and "--jobs 'many'" in r.output and "auto" in r.output
    assert not (tmp_path / "bad.jsonl").exists()


def test_jobs_are_checked_before_any_work(tmp_path, monkeypatch):
    r = CliRunner().invoke(app, _args(tmp_path, "x", "--jobs", "0"))
    assert r.exit_code == 2 and not (tmp_path / "x.jsonl").exists()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    args = _args(tmp_path, "y", "--jobs", "2")
    i = args.index("--device")
    r = CliRunner().invoke(app, args[:i] + args[i + 2 :])  # the default device: the GPU
    assert r.exit_code == 2 and "--jobs 2" in r.output and "GPU" in r.output
    assert not (tmp_path / "y.jsonl").exists()


@pytest.mark.parametrize("jobs", [3])
def test_more_jobs_than_strategies_is_fine(tmp_path, jobs):
    args = [
        "bench", "run", "--model", "tiny-random", "--steps", "4", "--episodes", "1",
        "-s", "none", "-s", "weak", "--device", "cpu", "--jobs", str(jobs),
        "--out", str(tmp_path / "r.jsonl"), "--cache", str(tmp_path / "c"),
    ]  # fmt: skip
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert set(_rows(tmp_path / "r.jsonl")) == {"none", "weak"}


def test_a_killed_worker_s_blocks_are_redone_by_the_others(tmp_path):
    """One of three workers SIGKILLed while it holds a block (claims, not a dealt queue): the
    others take its claim over (its pid is dead), and the rows are the one-thread rows."""
    import contextlib
    import multiprocessing
    import os
    import signal

    from genie_plugin.bench.parallel import run_parallel
    from genie_plugin.bench.scenario import Scenario

    scn = Scenario.from_dict(
        {
            "name": "kill",
            "model": "tiny-random",
            "steps": 4,
            "episodes": 9,
            "strategies": ["none", "genie", "genie_ada"],
        }  # fmt: skip
    )
    killed = []

    def kill_one(strategy, done, total, counts):
        if killed:
            return
        for claim in (tmp_path / "c" / "claims").glob("*/*.claim"):  # a worker holding a block
            with contextlib.suppress(OSError, ValueError):
                pid = json.loads(claim.read_text())["pid"]
                if pid in {p.pid for p in multiprocessing.active_children()}:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return

    stats: dict = {}
    rows = run_parallel(scn, jobs=3, cache_dir=tmp_path / "c", out=tmp_path / "k.jsonl",
                        device="cpu", progress=kill_one, stats=stats)  # fmt: skip
    assert killed and [r["strategy"] for r in rows] == ["none", "genie", "genie_ada"]
    assert stats == {"workers_lost": 1, "taken_over": 1}  # its one block, redone
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = run_parallel(scn, jobs=1, cache_dir=tmp_path / "c1", out=tmp_path / "o.jsonl",
                           device="cpu")  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(rows, one, strict=True):
        assert a["status"] == b["status"] == "ok"
        assert a["episode_accuracies"] == b["episode_accuracies"], a["strategy"]
    assert not (tmp_path / "c" / "claims").exists() or not any(
        (tmp_path / "c" / "claims").iterdir()
    )
