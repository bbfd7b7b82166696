"""Hostile input, second round: every case ends in one line naming the file/option/value and
the fix (exit 2), or works; nothing is lost, half-written, or replaced that should not be."""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from genie_cli.main import app

COMMITTED = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "embedded-5w1s.jsonl"
RUN_FAST = ["bench", "run", "-s", "none", "--episodes", "1", "--device", "cpu"]


def _cli(*args, env=None):
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def _one_line_error(res, *needles):
    """Exit 2, no traceback, one ``error:`` line naming each needle."""
    assert res.exit_code == 2, (res.exit_code, res.output)
    assert "Traceback" not in res.output, res.output
    line = next(x for x in res.output.splitlines() if x.startswith("error:"))
    for n in needles:
        assert n in " ".join(res.output.split()), (n, res.output)
    return line


def _rows(n=2):
    return [json.loads(x) for x in COMMITTED.read_text().splitlines()][:n]


# ---- 1. results files that are not results -------------------------------------------------


def _bad_results(tmp_path: Path) -> dict[str, Path]:
    good = COMMITTED.read_text()
    cases = {
        "torn": good + '{"torn": ',
        "garbage": "this is not json\n",
        "not_utf8": None,
        "list_row": "[1, 2, 3]\n",
        "no_scenario": json.dumps({k: v for k, v in _rows(1)[0].items() if k != "scenario"}),
        "string_mean": json.dumps({**_rows(1)[0], "mean": "high"}),
        "huge_accuracy": json.dumps({**_rows(1)[0], "episode_accuracies": [1e308] * 50}),
        "no_status": json.dumps({k: v for k, v in _rows(1)[0].items() if k != "status"}),
        "billion_episodes": json.dumps({**_rows(1)[0], "episodes": 10**9}),
    }
    out = {}
    for name, text in cases.items():
        p = tmp_path / f"{name}.jsonl"
        if text is None:
            p.write_bytes(good.encode()[:200] + b"\xff\xfe\xfa\n")
        else:
            p.write_text(text)
        out[name] = p
    out["missing"] = tmp_path / "missing.jsonl"
    folder = tmp_path / "folder.jsonl"
    folder.mkdir()
    out["folder"] = folder
    return out


@pytest.mark.parametrize(
    "command",
    [
        lambda p, t: ("bench", "leaderboard", p, "--out", t / "lb.md"),
        lambda p, t: ("bench", "report", p, "--out", t / "rep"),
        lambda p, t: ("bench", "compare", COMMITTED, p),
        lambda p, t: ("bench", "compare", p, COMMITTED),
    ],
    ids=["leaderboard", "report", "compare-rerun", "compare-committed"],
)
def test_reporting_commands_name_the_bad_results_file_and_line(tmp_path, command):
    for name, path in _bad_results(tmp_path).items():
        res = _cli(*command(path, tmp_path))
        line = _one_line_error(res, path.name)
        if name not in ("missing", "folder"):
            assert "line " in line, (name, line)
        assert not (tmp_path / "lb.md").exists() and not (tmp_path / "rep").exists()


def test_bench_run_checks_its_out_before_scoring(tmp_path):
    """A torn results file, a folder, or a FIFO as --out: refused before any strategy runs
    (before: JSONDecodeError / IsADirectoryError after the first row was scored, rows lost)."""
    torn = tmp_path / "g.jsonl"
    torn.write_text(COMMITTED.read_text() + '{"torn": ')
    before = torn.read_bytes()
    res = _cli(*RUN_FAST, "--out", torn, "--cache", tmp_path / "c")
    torn_line = len(COMMITTED.read_text().splitlines()) + 1
    _one_line_error(res, f"g.jsonl line {torn_line}", "torn")
    assert torn.read_bytes() == before and not (tmp_path / "c").exists()
    folder = tmp_path / "bench"
    folder.mkdir()
    _one_line_error(_cli(*RUN_FAST, "--out", folder), "--out", "is a folder")
    fifo = tmp_path / "null"
    os.mkfifo(fifo)
    _one_line_error(_cli(*RUN_FAST, "--out", fifo), "not a regular file")
    res = _cli("bench", "leaderboard", COMMITTED, "--out", fifo)  # the /dev/null case
    _one_line_error(res, "not a regular file")
    assert fifo.is_fifo() and sorted(p.name for p in tmp_path.iterdir()) == [
        "bench",
        "g.jsonl",
        "null",
    ]  # fmt: skip  (no null.lock beside it)


def test_a_results_file_damaged_during_the_run_keeps_the_new_rows_aside(tmp_path):
    from genie_plugin.bench.leaderboard import merge_rows
    from genie_plugin.errors import ConfigError

    out = tmp_path / "r.jsonl"
    out.write_text('{"torn": \n')
    with pytest.raises(ConfigError, match="rescued"):
        merge_rows(out, _rows(1))
    (aside,) = tmp_path.glob("r.rescued-*.jsonl")
    assert json.loads(aside.read_text()) == _rows(1)[0]
    assert out.read_text() == '{"torn": \n'


def test_a_symlinked_results_file_is_written_through(tmp_path):
    real = tmp_path / "store" / "results.jsonl"
    real.parent.mkdir()
    link = tmp_path / "results.jsonl"
    link.symlink_to(real)
    res = _cli(*RUN_FAST, "--out", link, "--cache", tmp_path / "c")
    assert res.exit_code == 0, res.output
    assert link.is_symlink() and json.loads(real.read_text())["strategy"] == "none"


# ---- names with markup, math, markdown and control characters ------------------------------


def test_dollar_signs_in_names_plot_as_text(tmp_path):
    rows = [{**r, "scenario": "budget_$5_vs_$10", "strategy": f"{r['strategy']}_$x$"}
            for r in _rows(2)]  # fmt: skip
    src = tmp_path / "r.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = _cli("bench", "leaderboard", src, "--out", tmp_path / "lb.md")
    assert res.exit_code == 0, res.output
    with Image.open(tmp_path / "lb.png") as im:
        im.load()


def test_sweep_target_with_dollars_writes_its_json(tmp_path):
    res = _cli("sweep", "--target", "a $5 $bill", "--out", tmp_path / "s", "--steps", "4",
               "--device", "cpu", "--ratios", "0.5,0.9", "--backbone", "embedded")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "s" / "sweep.json").read_text())["target"] == "a $5 $bill"


def test_rich_markup_in_paths_and_names_is_text(tmp_path):
    res = _cli("augment", tmp_path / "photo [copy].png", "--target", "cat", "--out", tmp_path / "o")
    _one_line_error(res, "photo [copy].png")
    odd = tmp_path / "out [/] x"
    scn = tmp_path / "s.json"
    scn.write_text(json.dumps({"name": "exp [/bold] [/]", "strategies": ["none"], "episodes": 1}))
    res = _cli("bench", "run", scn, "--out", odd / "r.jsonl", "--cache", odd / "c")
    assert res.exit_code == 0, res.output
    assert "exp [/bold] [/]" in res.output and "out [/] x" in " ".join(res.output.split())
    res = _cli(*RUN_FAST, "--dataset", "mini-imagenet", "--root", tmp_path / "[/]missing",
               "--model", "embedded", "--backbone", "embedded")  # fmt: skip
    _one_line_error(res, "[/]missing")


def test_markdown_and_csv_cells_are_escaped(tmp_path):
    evil = "<script>alert(1)</script>|x\n=HYPERLINK(1)"
    rows = _rows(2)
    rows[1] = {**rows[1], "strategy": evil}
    rows.append({**rows[0], "strategy": "=cmd|' /C calc'!A0", "status": "failed",
                 "error": "ValueError: line one\nline two | three"})  # fmt: skip
    src = tmp_path / "r.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = _cli("bench", "leaderboard", src, "--out", tmp_path / "lb.md")
    assert res.exit_code == 0, res.output
    md = (tmp_path / "lb.md").read_text()
    table = [x for x in md.splitlines() if x.startswith("| ") and "strategy" not in x]
    assert len(table) == 3 and "<script>" not in md
    for line in table:  # 7 columns each: no | or newline shifted them
        assert len(line.replace("\\|", "").split("|")) == 9, line
    import csv
    import io

    cells = [c for row in csv.reader(io.StringIO((tmp_path / "lb.csv").read_text())) for c in row]
    assert not any(c.startswith(("=", "+", "@")) for c in cells)
    assert "'=cmd|' /C calc'!A0" in cells


def test_control_characters_from_label_files_do_not_reach_the_terminal(tmp_path):
    from tests.real_formats import write_tiered

    root = write_tiered(tmp_path / "t", per_class=2)
    labels = root / "tiered-imagenet" / "test_labels.pkl"
    meta = pickle.loads(labels.read_bytes())
    meta["label_specific_str"][0] = "n01\x1b]0;pwned\x07\x1b[2J"
    labels.write_bytes(pickle.dumps(meta))
    res = _cli("datasets", "classes", "tiered-imagenet", "--root", root)
    assert res.exit_code == 0, res.output
    assert "\x1b" not in res.output and "\x07" not in res.output
    assert "\\x1b]0;pwned\\x07" in res.output
    from genie_plugin.progress import PlainProgress

    buf = __import__("io").StringIO()
    with PlainProgress(stream=buf, interval=0) as bar:
        bar.update(bar.add_task("scn\x1b[31m red", total=1), completed=1, info="")
    assert "\x1b" not in buf.getvalue() and "\\x1b[31m red" in buf.getvalue()


# ---- errnos, environment, options ----------------------------------------------------------


@pytest.mark.parametrize(
    "code, hint",
    [(errno.ENOTEMPTY, "half-deleted"), (errno.ENAMETOOLONG, "shorten"),
     (errno.ENOTDIR, "not a folder"), (errno.EIO, "I/O"), (errno.EXDEV, "check the path")],
)  # fmt: skip
def test_every_oserror_is_one_line_naming_the_file(code, hint, capsys):
    import typer

    from genie_cli._common import handle_errors

    @handle_errors
    def command():
        raise OSError(code, os.strerror(code), "/models/sd15/unet")

    with pytest.raises(typer.Exit) as exc:
        command()
    assert exc.value.exit_code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert err.startswith("error: /models/sd15/unet: ") and hint in err, err


def test_files_where_folders_belong_and_long_names(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    res = _cli(*RUN_FAST, "--out", tmp_path / "r.jsonl", env={"GENIE_CACHE_DIR": str(f)})
    _one_line_error(res, "afile")
    _one_line_error(_cli("export-onnx", "--out", f), "not a folder")
    _one_line_error(_cli("datasets", "export-shapes", f / "sub"), "afile")
    scn = tmp_path / "long.json"
    scn.write_text(json.dumps({"name": "x" * 240, "strategies": ["none"], "episodes": 1}))
    _one_line_error(_cli("bench", "run", scn, "--out", tmp_path / "r.jsonl"), "name")
    assert f.read_text() == "x"


def test_bad_environment_and_option_values(tmp_path):
    out = tmp_path / "r.jsonl"
    res = _cli(*RUN_FAST, "--out", out, env={"GENIE_PROGRESS_INTERVAL": "abc"})
    _one_line_error(res, "GENIE_PROGRESS_INTERVAL='abc'")
    for bad in ("abc", "2"):  # garbage, or a stray WORLD_SIZE outside a launcher
        res = _cli("bench", "generate", "--episodes", "1", "-s", "genie",
                   "--cache", tmp_path / "c", env={"WORLD_SIZE": bad})  # fmt: skip
        _one_line_error(res, "WORLD_SIZE")
    assert _cli("datasets", "export-shapes", tmp_path / "s", "--per-class", "0").exit_code == 2
    assert _cli("export-onnx", "--out", tmp_path / "o", "--opset", "1").exit_code == 2
    assert not out.exists() and not (tmp_path / "s").exists() and not (tmp_path / "o").exists()


def test_a_truncated_shapes_cache_is_made_again(tmp_path, monkeypatch):
    from genie_plugin.embedded import dataset as ds

    monkeypatch.setenv("GENIE_CACHE_DIR", str(tmp_path))
    x, y, names = ds.load_arrays("novel", per_class=2)
    (path,) = (tmp_path / "datasets").glob("*.npz")
    path.write_bytes(path.read_bytes()[:100])
    x2, y2, _ = ds.load_arrays("novel", per_class=2)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)


# ---- 3. data loss ----------------------------------------------------------------------------


def _generated(n, tag):
    from genie_plugin.strategies.base import GeneratedImage

    return [
        GeneratedImage(
            Image.new("RGB", (8, 8), (k, 0, 0)),
            0,
            {
                "strategy": "genie",
                "source_id": f"{tag}{k}.png",
                "target_class": "cat",
                "ratio": 0.8,
                "copy": 0,
            },
        )  # fmt: skip
        for k in range(n)
    ]


def test_concurrent_augment_runs_into_one_out_lose_nothing(tmp_path):
    from genie_plugin.augment.outputs import write_outputs

    out = tmp_path / "o"
    batches = [_generated(4, f"w{w}-") for w in range(5)]
    threads = [threading.Thread(target=write_outputs, args=(out, b)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    recs = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(recs) == 20 and len({r["image"] for r in recs}) == 20
    assert sorted(p.name for p in out.glob("*.png")) == sorted(r["image"] for r in recs)


def test_a_deleted_or_torn_manifest_overwrites_nothing(tmp_path):
    from genie_plugin.augment.outputs import check_manifest, write_outputs
    from genie_plugin.errors import ConfigError

    out = tmp_path / "o"
    (first,) = write_outputs(out, _generated(1, "a"))
    before = first.read_bytes()
    (out / "manifest.jsonl").unlink()
    (second,) = write_outputs(out, _generated(1, "a"))
    assert second != first and first.read_bytes() == before and second.name.startswith("0001_")
    (out / "manifest.jsonl").write_text('{"image": "0001_x.png"}\n{"torn": ')
    with pytest.raises(ConfigError, match="line 2"):
        check_manifest(out)
    write_outputs(out, _generated(1, "b"))  # a writer that skipped the check: lines kept
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert lines[:2] == ['{"image": "0001_x.png"}', '{"torn": '] and len(lines) == 3


def test_augment_refuses_a_torn_manifest_before_generating(tmp_path):
    src = tmp_path / "s.png"
    Image.new("RGB", (32, 32), (200, 10, 10)).save(src)
    out = tmp_path / "o"
    out.mkdir()
    (out / "manifest.jsonl").write_text('{"torn": ')
    res = _cli("augment", src, "--target", "star", "--out", out, "--steps", "4")
    _one_line_error(res, "manifest.jsonl line 1")
    assert sorted(p.name for p in out.iterdir()) == ["manifest.jsonl"]


def test_a_failing_plot_replaces_no_leaderboard_file(tmp_path, monkeypatch):
    from genie_plugin.bench import leaderboard as lb

    src = tmp_path / "r.jsonl"
    shutil.copy(COMMITTED, src)
    lb.write_leaderboard([src], tmp_path / "lb.md")
    before = {p.name: p.read_bytes() for p in tmp_path.glob("lb.*")}

    def broken(rows):
        raise RuntimeError("plot failed")

    monkeypatch.setattr(lb, "plot_png", broken)
    rows = [{**r, "mean": r["mean"]} for r in _rows(50)]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows[:3]))
    with pytest.raises(RuntimeError):
        lb.write_leaderboard([src], tmp_path / "lb.md")
    assert {p.name: p.read_bytes() for p in tmp_path.glob("lb.*")} == before


def test_leaderboard_never_writes_over_its_inputs(tmp_path):
    src = tmp_path / "r.jsonl"
    shutil.copy(COMMITTED, src)
    _one_line_error(_cli("bench", "leaderboard", src, "--out", src), "is the input")
    link = tmp_path / "l.md"
    link.symlink_to(src)
    _one_line_error(_cli("bench", "leaderboard", src, "--out", link), "is the input")
    assert src.read_bytes() == COMMITTED.read_bytes()
    res = _cli("bench", "leaderboard", src)  # default: beside the results, not the checkout's
    assert res.exit_code == 0, res.output
    assert (tmp_path / "leaderboard.md").is_file()


def _children(pid: int) -> set[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return set()
    return {int(x) for x in text.split()}


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc")
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_stop_a_jobs_run_cleanly(tmp_path, sig, code):
    """``docker stop`` / ``timeout`` / Slurm send SIGTERM: the workers stop with the parent,
    the finished rows are kept, one line, exit 143 (129 for SIGHUP)."""
    out = tmp_path / "r.jsonl"
    cmd = [sys.executable, "-m", "genie_cli.main", "bench", "run", "--episodes", "12",
           "-s", "none", "-s", "genie", "--jobs", "2", "--device", "cpu",
           "--out", str(out), "--cache", str(tmp_path / "c")]  # fmt: skip
    env = {**os.environ, "GENIE_PROGRESS_INTERVAL": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            text=True)  # fmt: skip
    deadline = time.time() + 240
    while not (out.exists() and '"none"' in out.read_text()) and time.time() < deadline:
        time.sleep(0.2)
    assert out.exists(), "the none row never arrived"
    workers = _children(proc.pid)
    assert len(workers) >= 2
    proc.send_signal(sig)
    text, _ = proc.communicate(timeout=60)
    assert proc.returncode == code, text
    assert "Traceback" not in text and "interrupted" in text
    assert [json.loads(x)["strategy"] for x in out.read_text().splitlines()] == ["none"]
    t0 = time.time()
    while any(_alive(w) for w in workers) and time.time() - t0 < 20:
        time.sleep(0.2)
    assert not any(_alive(w) for w in workers), "workers outlived the parent"


# ---- 4. statements that must be true ---------------------------------------------------------


def test_leaderboard_says_when_rows_ran_other_episodes_and_shows_a_row_once(tmp_path):
    rows = _rows(3)
    short = {**rows[2], "episodes": 20, "episode_accuracies": rows[2]["episode_accuracies"][:20],
             "episodes_hash": "sha256:other"}  # fmt: skip
    short["mean"] = round(sum(short["episode_accuracies"]) / 20, 2)
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("".join(json.dumps(r) + "\n" for r in rows))
    b.write_text(json.dumps(short) + "\n" + json.dumps(rows[0]) + "\n")  # a rerun, a duplicate
    res = _cli("bench", "leaderboard", a, b, "--out", tmp_path / "lb.md")
    assert res.exit_code == 0, res.output
    md = (tmp_path / "lb.md").read_text()
    assert "identical for every row" not in md and "2 different episode lists" in md
    assert md.count(f"| {rows[0]['strategy']} ") == 1
    assert f"| {short['strategy']} (other episodes: 20) |" in md


def test_report_plots_of_similar_scenario_names_do_not_collide(tmp_path):
    from genie_plugin.bench.report import build_report

    rows = []
    for scn in ("exp 1", "exp-1"):
        for r in _rows(3):
            rows.append({**r, "scenario": scn, "mean": r["mean"] + (scn == "exp-1"),
                         "episode_accuracies": [a + (scn == "exp-1") for a in r["episode_accuracies"]]})  # fmt: skip
    src = tmp_path / "r.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    build_report(src, tmp_path / "rep")
    plots = sorted(p.name for p in (tmp_path / "rep").glob("gain_cost_*.png"))
    assert len(plots) == 2, plots


# ---- 6. pickles that run code ----------------------------------------------------------------


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_dataset_pickles_that_would_run_code_are_refused_unopened(tmp_path):
    from tests.real_formats import write_mini, write_tiered

    marker = tmp_path / "pwned"
    mini = write_mini(tmp_path / "m", per_class=2)
    pkl = mini / "mini-imagenet-cache-test.pkl"
    data = pickle.loads(pkl.read_bytes())
    data["class_dict"]["extra"] = _Evil(marker)
    pkl.write_bytes(pickle.dumps(data))
    res = _cli("datasets", "classes", "mini-imagenet", "--root", mini)
    _one_line_error(res, "mini-imagenet-cache-test.pkl", "posix.system")
    tiered = write_tiered(tmp_path / "t", per_class=2)
    labels = tiered / "tiered-imagenet" / "test_labels.pkl"
    meta = pickle.loads(labels.read_bytes())
    meta["label_general_str"] = _Evil(marker)
    labels.write_bytes(pickle.dumps(meta, protocol=2))
    res = _cli("datasets", "classes", "tiered-imagenet", "--root", tiered)
    _one_line_error(res, "test_labels.pkl")
    assert not marker.exists()
    from genie_plugin.data.safe_pickle import load_restricted
    from genie_plugin.data.specs import DatasetError

    with pytest.raises(DatasetError, match="not allowed"):
        load_restricted(labels)
    assert not marker.exists()


def test_real_format_pickles_pass_the_scan(tmp_path):
    from genie_plugin.data.safe_pickle import ALLOWED_GLOBALS, pickle_globals
    from tests.real_formats import write_mini, write_tiered

    mini = write_mini(tmp_path / "m", per_class=2) / "mini-imagenet-cache-test.pkl"
    tiered = write_tiered(tmp_path / "t", per_class=2) / "tiered-imagenet"
    for p in (mini, tiered / "test_labels.pkl", tiered / "test_images_png.pkl"):
        assert pickle_globals(p) <= ALLOWED_GLOBALS, p
    for proto in (0, 2, 4, 5):  # numpy arrays in every protocol a mirror may have used
        p = tmp_path / f"a{proto}.pkl"
        p.write_bytes(pickle.dumps({"x": np.arange(6, dtype=np.uint8).reshape(2, 3),
                                    "s": ["n0123"], "y": np.int64(3)}, protocol=proto))  # fmt: skip
        assert pickle_globals(p) <= ALLOWED_GLOBALS, (proto, pickle_globals(p))


# ---- 7. unbounded work -----------------------------------------------------------------------


def test_limits_where_a_value_can_only_be_a_mistake(tmp_path):
    res = _cli("bench", "run", *(["-s", "none"] * 10_000), "--episodes", "1",
               "--out", tmp_path / "r.jsonl")  # fmt: skip
    _one_line_error(res, "'none' is listed 10000 times")
    assert not (tmp_path / "r.jsonl").exists()


def test_report_quality_episodes_are_capped_at_the_runs(tmp_path):
    out, cache = tmp_path / "r.jsonl", tmp_path / "c"
    res = _cli("bench", "run", "-s", "none", "-s", "genie", "--episodes", "1", "--device", "cpu",
               "--out", out, "--cache", cache)  # fmt: skip
    assert res.exit_code == 0, res.output
    t0 = time.time()
    res = _cli("bench", "report", out, "--out", tmp_path / "rep", "--cache", cache,
               "--quality-episodes", "1000000000", "--device", "cpu")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert time.time() - t0 < 120 and (tmp_path / "rep" / "index.html").is_file()


# ---- fuzz: results rows and the text in them -------------------------------------------------

from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
_FIELDS = ["scenario", "strategy", "status", "mean", "ci95", "episodes", "episode_accuracies",
           "episodes_hash", "ways", "shots", "images_generated", "cache_hits", "error"]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.tuples(st.sampled_from(_FIELDS + ["drop"]), _json_values),
        min_size=0,
        max_size=4,
    ),  # fmt: skip
    st.sampled_from(["none", "row", "torn", "bytes"]),
)
def test_fuzzed_result_rows_render_or_are_named(tmp_path_factory, edits, damage):
    """Any edit of a committed row either validates (and then renders in every format) or is
    refused naming the file and line; never a traceback."""
    from genie_plugin.bench.leaderboard import plot_png, render_csv, render_markdown
    from genie_plugin.bench.rows import read_results
    from genie_plugin.errors import ConfigError

    d = tmp_path_factory.mktemp("fz")
    row = dict(_rows(1)[0])
    for key, value in edits:
        if key == "drop":
            row.pop(str(value), None)
        else:
            row[key] = value
    text = json.dumps(row, allow_nan=True)
    data = {"none": text.encode(), "row": text.encode(), "torn": text.encode()[: len(text) // 2],
            "bytes": text.encode()[:10] + b"\xc3\x28" + text.encode()[10:]}[damage]  # fmt: skip
    p = d / "r.jsonl"
    p.write_bytes(COMMITTED.read_bytes() + data + b"\n")
    try:
        rows = read_results(p)
    except ConfigError as exc:
        assert f"line {len(COMMITTED.read_text().splitlines()) + 1}" in str(exc), str(exc)
        return
    md = render_markdown(rows)
    assert all(len(x.replace("\\|", "").split("|")) == 9 for x in md.splitlines()
               if x.startswith("| ") and not x.startswith("| strategy"))  # fmt: skip
    render_csv(rows)
    plot_png(rows)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.text(min_size=1, max_size=30) | st.text(alphabet="[]\\/a#@ b", min_size=1, max_size=12))
@example(name="\\[")  # rich read it as an escaped bracket and printed "["
@example(name="x\\[/]")
@example(name="\u2e80\t")  # a wide character before a tab: the oracle must count cells
def test_fuzzed_names_in_every_sink(name):
    """Any text as a strategy or scenario name: rich markup, Markdown, CSV and the plot take it
    as text; the terminal sees no control characters."""
    from rich.console import Console
    from rich.text import Text

    from genie_plugin.bench.leaderboard import plot_png, render_csv, render_markdown
    from genie_plugin.sinks import markup, terminal

    rows = [{**r, "strategy": f"{r['strategy']}{name}", "scenario": name} for r in _rows(2)]
    md = render_markdown(rows)
    assert not any(ord(c) < 32 and c not in "\n" for c in md)
    assert all(len(x.replace("\\|", "").split("|")) == 9 for x in md.splitlines()
               if x.startswith("| ") and not x.startswith("| strategy"))  # fmt: skip
    render_csv(rows)
    plot_png(rows)
    console = Console(file=__import__("io").StringIO(), width=200, color_system=None)
    console.print(f"[bold]{markup(name)}[/]")
    shown = console.file.getvalue().rstrip("\n")
    expected = Text(terminal(name))
    expected.expand_tabs(8)  # by cell width, as rich lays tabs out (a CJK character is 2 cells)
    assert shown == expected.plain.rstrip("\n") or "\n" in name
