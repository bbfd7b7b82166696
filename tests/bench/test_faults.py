"""Faults and bad input: kept rows, one-line errors before any work, concurrent writers,
plain progress in logs, and fuzzed scenario files and math (hypothesis)."""

import json
import multiprocessing as mp

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from genie_cli.main import app
from genie_plugin.bench.leaderboard import merge_rows
from genie_plugin.bench.scenario import Scenario
from genie_plugin.errors import GenieError
from genie_plugin.io import read_jsonl


def _scenario_file(tmp_path, **kw):
    d = {"name": "t", "episodes": 1, "steps": 2, "model": "tiny-random", "queries": 2, **kw}
    p = tmp_path / "s.json"
    p.write_text(json.dumps(d))
    return p


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("episodes", "many", "episodes = 'many': input should be a valid integer"),
        ("episodes", -3, "episodes = -3: input should be greater than or equal to 1"),
        ("shots", 0, "shots = 0"),
        ("real_views", -1, "real_views = -1"),
        ("steps", 2.5, "steps = 2.5"),
        ("guidance_t_min", 1.0, "guidance_t_min = 1.0: input should be less than 1"),
        ("dataset", "imagenet", "dataset = 'imagenet': unknown"),
        ("backend", "tpu", "unknown backend 'tpu'"),
        ("strategies", [], "strategies = ()"),
        ("wayz", 5, "unknown scenario keys ['wayz']"),
    ],
)
def test_bad_scenario_files_stop_before_any_work(tmp_path, key, value, says):
    scn = _scenario_file(tmp_path, **{key: value})
    out = tmp_path / "out" / "results.jsonl"
    res = CliRunner().invoke(app, ["bench", "run", str(scn), "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert says in res.output and str(scn) in res.output and "Traceback" not in res.output
    assert not (tmp_path / "out").exists()  # nothing written


def test_unknown_strategy_stops_before_any_work(tmp_path):
    out = tmp_path / "out" / "results.jsonl"
    res = CliRunner().invoke(
        app, ["bench", "run", str(_scenario_file(tmp_path)), "-s", "geni", "--out", str(out)]
    )
    assert res.exit_code == 2 and "unknown strategy 'geni'" in res.output
    assert not (tmp_path / "out").exists()


def test_unwritable_out_is_one_line_before_any_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = CliRunner().invoke(
        app,
        ["bench", "run", str(_scenario_file(tmp_path)), "--out", str(blocker / "r.jsonl")],
    )
    assert res.exit_code == 2 and "is a file, not a folder" in res.output


def test_a_run_interrupted_late_keeps_the_rows_it_finished(tmp_path, monkeypatch):
    """Rows are merged into the results file as each strategy ends: an interrupt during the
    second strategy keeps the first one's row; exit code 130 and one line."""
    from genie_plugin.fewshot import protocol

    real = protocol.logistic_regression_predict
    calls = {"n": 0}

    def dies_in_the_second_strategy(*a, **kw):
        calls["n"] += 1
        if calls["n"] > 1:  # one episode per strategy
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(protocol, "logistic_regression_predict", dies_in_the_second_strategy)
    out = tmp_path / "results.jsonl"
    scn = _scenario_file(tmp_path, strategies=["none", "weak"])
    res = CliRunner().invoke(app, ["bench", "run", str(scn), "--out", str(out)])
    assert res.exit_code == 130 and "interrupted" in res.output
    rows = read_jsonl(out)
    assert [r["strategy"] for r in rows] == ["none"] and rows[0]["status"] == "ok"


def _write_rows(path, k):
    for i in range(10):
        row = {"scenario": "s", "strategy": f"w{k}-{i}", "status": "failed", "error": str(i)}
        merge_rows(path, [row])


def test_concurrent_writers_lose_nothing(tmp_path):
    out = tmp_path / "results.jsonl"
    procs = [mp.get_context("fork").Process(target=_write_rows, args=(out, k)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    rows = read_jsonl(out)
    assert sorted(r["strategy"] for r in rows) == sorted(
        f"w{k}-{i}" for k in range(4) for i in range(10)
    )


def test_plain_progress_lines_in_a_log():
    import io

    from genie_plugin.progress import PlainProgress

    buf = io.StringIO()
    with PlainProgress(stream=buf, interval=0) as bar:
        t = bar.add_task("genie", total=3, info="")
        for _ in range(3):
            bar.update(t, advance=1, info="generated 4")
    lines = buf.getvalue().splitlines()
    assert lines[-1].startswith("genie 3/3 generated 4") and len(lines) == 3
    quiet = io.StringIO()
    with PlainProgress(stream=quiet, interval=3600) as bar:
        t = bar.add_task("weak", total=100, info="")
        for _ in range(99):
            bar.advance(t)
    assert quiet.getvalue().count("\n") == 2  # the first update, then the end on exit


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)
_keys = st.sampled_from(
    [
        "episodes",
        "ways",
        "shots",
        "queries",
        "seed",
        "steps",
        "resolution",
        "guidance",
        "timestep_shift",
        "guidance_t_min",
        "real_views",
        "gen_views",
        "view_size",
        "strategies",
        "dataset",
        "backend",
        "model",
        "name",
        "bogus",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, _json, max_size=4))
def test_fuzzed_scenario_dicts_load_or_say_why(d):
    try:
        scn = Scenario.from_dict(d)
    except GenieError as exc:
        assert "\n" not in str(exc) and str(exc)
    else:
        assert scn.episodes >= 1 and scn.ways >= 2 and len(scn.strategies) >= 1


def _small_disk(path):
    """A 64 KB tmpfs at ``path`` where this machine lets root mount one (CI's does), else None."""
    import subprocess

    path.mkdir()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(path)], capture_output=True
    )
    return path if res.returncode == 0 else None


def test_a_full_disk_stops_with_one_line_and_a_rerun_completes(tmp_path, monkeypatch):
    """The cache on a tiny file system fills mid-run: one line naming the file, no temp files
    left, the finished row kept; with the space back (the cache copied to a big disk) the
    rerun completes, reusing what was written. Where no tmpfs can be mounted, the write
    fails with ENOSPC by monkeypatch (the same error the kernel gives)."""
    import errno
    import shutil
    import subprocess

    small = _small_disk(tmp_path / "small")
    if small is None:  # simulated: every PNG write after the 12th fails as a full disk would
        from genie_plugin.diffusion import cache as cache_mod

        real, calls = cache_mod.link_new_bytes, {"n": 0}

        def full_after_12(path, data):
            calls["n"] += 1
            if calls["n"] > 12:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            return real(path, data)

        monkeypatch.setattr(cache_mod, "link_new_bytes", full_after_12)
        small = tmp_path / "small"
    try:
        out = tmp_path / "results.jsonl"
        scn = _scenario_file(tmp_path, strategies=["none", "genie"], steps=2)
        res = CliRunner().invoke(
            app, ["bench", "run", str(scn), "--out", str(out), "--cache", str(small / "c")]
        )
        assert res.exit_code == 2, res.output
        last = [x for x in res.output.splitlines() if x.strip()][-1]
        assert "No space left on device" in last and "Traceback" not in res.output
        assert str(small / "c") in last  # names where
        assert not list(small.rglob("*.tmp")) and not list(small.rglob(".*.tmp"))
        assert [r["strategy"] for r in read_jsonl(out)] == ["none"]  # the finished row kept
        big = tmp_path / "big"
        shutil.copytree(small / "c", big)
    finally:
        subprocess.run(["umount", str(tmp_path / "small")], capture_output=True)
    monkeypatch.undo()
    res = CliRunner().invoke(
        app, ["bench", "run", str(scn), "--out", str(out), "--cache", str(big)]
    )
    assert res.exit_code == 0, res.output
    rows = {r["strategy"]: r for r in read_jsonl(out)}
    assert rows["genie"]["status"] == "ok" and rows["genie"]["cache_hits"] > 0


def test_bad_sampler_options_stop_before_the_model_loads(tmp_path, monkeypatch):
    from genie_plugin.diffusion import loading
    from tests.conftest import make_image

    def no_loading(*a, **kw):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(loading, "load_generator", no_loading)
    src = tmp_path / "a.png"
    make_image(0).save(src)
    for args, says in (
        (["--steps", "0"], "--steps must be a positive integer"),
        (["--resolution", "30"], "--resolution must be a multiple of 8"),
        (["--guidance-t-min", "1.5"], "--guidance-t-min must be in [0, 1)"),
    ):
        res = CliRunner().invoke(
            app, ["augment", str(src), "-t", "star", "-o", str(tmp_path / "o"), *args]
        )
        assert res.exit_code == 2 and says in res.output, res.output
    assert not (tmp_path / "o").exists()
