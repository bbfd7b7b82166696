"""The genie CLI through Typer's CliRunner, plus one real console-script subprocess."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from genie_cli.main import app

FAST = ["--steps", "4", "--device", "cpu", "--model", "tiny-random"]
runner = CliRunner()


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def srcs(tmp_path):
    paths = []
    for i, mode in enumerate(["RGB", "L", "RGBA"]):
        p = tmp_path / f"src{i}.png"
        Image.new(mode, (48, 40), (40 * i + 30,) * len(mode)).save(p)
        paths.append(p)
    return paths


def test_strategies_list_and_show():
    res = _invoke("strategies", "list")
    assert res.exit_code == 0
    for name in ("genie", "genie_ada", "text2image", "img2img", "img2img_high"):
        assert name in res.output
    res = _invoke("strategies", "list", "genie*")
    assert "text2image" not in res.output and "genie_ada" in res.output
    res = _invoke("strategies", "show", "genie")
    info = json.loads(res.output)
    assert info["config"]["ratio"] == 0.8 and info["config"]["prompt"] == "a photo of a {name}."
    res = _invoke("strategies", "show", "geni")
    assert res.exit_code == 2 and "known strategies: cutmix, da_fusion, datadream" in res.output


@pytest.mark.parametrize(
    "strategy", ["genie", "text2image", "img2img", "genie_ada", "genie_ada_fast", "genie_ada_lite"]
)
def test_augment_writes_images_and_manifest(tmp_path, srcs, strategy):
    out = tmp_path / "out"
    extra = ["--backbone", "resnet10t:random"] if strategy.startswith("genie_ada") else []
    steps = {"genie_ada_fast": 12, "genie_ada_lite": 8}.get(strategy, 4)
    if steps != 4:  # above the probe's 10 steps / 5 per candidate (the last --steps wins)
        extra += ["--steps", str(steps)]
    res = _invoke(
        "augment",
        *srcs,
        "--target",
        "tabby cat",
        "--strategy",
        strategy,
        "--out",
        out,
        *FAST,
        *extra,
    )
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == len(srcs)
    for row in rows:
        with Image.open(out / row["image"]) as im:
            im.load()
            assert im.size == (32, 32) and im.mode == "RGB"
        assert row["target_class"] == "tabby cat" and row["strategy"] == strategy
        assert row["model"]["fingerprint"].startswith("sha256:")
    if strategy == "genie":
        assert {r["source_id"] for r in rows} == {str(p) for p in srcs}
        assert {r["ratio"] for r in rows} == {0.8}
    if strategy.startswith("genie_ada"):
        assert all(r["ada"]["prototype"] == "text2image" for r in rows)
        assert all(r["ratio"] == r["ada"]["r_star"] for r in rows)
        probes = {(r["ada"].get("probe_steps"), r["ada"].get("probe_item_steps")) for r in rows}
        expect = {"genie_ada_fast": (10, None), "genie_ada_lite": (None, 5)}
        assert probes == {expect.get(strategy, (None, None))}
        assert {r["model"]["steps"] for r in rows} == {steps}
    # a second run appends, never overwrites
    res = _invoke("augment", srcs[0], "--target", "dog", "--out", out, *FAST)
    assert res.exit_code == 0
    rows2 = (out / "manifest.jsonl").read_text().splitlines()
    assert len(rows2) == len(srcs) + 1
    assert len(list(out.glob("*.png"))) == len(srcs) + 1


def test_augment_ratio_override_and_same_seed_same_bytes(tmp_path, srcs):
    a, b = tmp_path / "a", tmp_path / "b"
    for out, extra in ((a, ["--max-batch", "auto"]), (b, ["--max-batch", "3"])):
        res = _invoke("augment", srcs[0], "-t", "cat", "--ratio", "0.5", "-o", out, *FAST, *extra)
        assert res.exit_code == 0, res.output
    (pa,), (pb,) = list(a.glob("*.png")), list(b.glob("*.png"))
    assert pa.read_bytes() == pb.read_bytes()
    assert "_r0.50_" in pa.name


def test_sweep_writes_grid_curve_and_json(tmp_path, srcs):
    out = tmp_path / "sw"
    res = _invoke(
        "sweep",
        srcs[0],
        "--target",
        "cat",
        "--out",
        out,
        "--ratios",
        "0.3,0.5,0.7,0.9,1.0",
        "--backbone",
        "resnet10t:random",
        *FAST,
    )
    assert res.exit_code == 0, res.output
    with Image.open(out / "sweep_grid.png") as grid:
        assert grid.width > 5 * grid.height  # source + 5 tiles in one row
    with Image.open(out / "ada_curve.png") as curve:
        curve.load()
    data = json.loads((out / "sweep.json").read_text())
    assert data["ratios"] == [0.3, 0.5, 0.7, 0.9, 1.0]
    assert data["ada"]["r_star"] in data["ratios"][1:]


def test_sweep_defaults_embedded_model_and_bundled_sample(tmp_path):
    # the main job: the shipped model, a bundled heart image towards "star"
    res = _invoke(
        "sweep",
        "--out",
        tmp_path / "s",
        "--steps",
        "20",
        "--device",
        "cpu",
        "--backbone",
        "embedded",
    )
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert data["target"] == "star" and data["source"].endswith("sample_heart.png")
    assert data["model"]["model"] == "embedded"
    with Image.open(tmp_path / "s" / "ada_curve.png") as curve:
        curve.load()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--ratio", "1.5"], "ratio must be in (0, 1]"),
        (["--ratio", "0"], "ratio must be in (0, 1]"),
        (["--target", "  "], "--target must not be empty"),
        (["--strategy", "genei"], "unknown strategy 'genei'"),
        (["--scheduler", "plms"], "unknown scheduler 'plms'"),
        (["--strategy", "text2image", "--ratio", "0.5"], "--ratio does not apply"),
        (["--strategy", "genie_ada"], "pass --backbone"),
        (["--strategy", "genie_ada_fast"], "pass --backbone"),
        (["--model", "no/such-model-here"], "not in the Hugging Face cache"),
        (["--backend", "cuda-graphs"], "needs the model on a CUDA device"),
        (["--backend", "tensorrt"], "unknown backend 'tensorrt'"),
        (["--max-batch", "0"], "--max-batch must be"),
        (["--timestep-shift", "0"], "--timestep-shift must be a positive"),
        (["--guidance-t-min", "1.5"], "--guidance-t-min must be in"),
    ],
)
def test_bad_options_are_one_line_errors_and_write_nothing(tmp_path, srcs, args, message):
    out = tmp_path / "out"
    base = {"--target": "cat"}
    argv = ["augment", *srcs, "--out", out, *FAST]
    if "--target" not in args:
        argv += ["--target", base["--target"]]
    res = _invoke(*argv, *args)
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.split())
    assert "Traceback" not in res.output
    assert not out.exists() or not any(out.iterdir())


def test_bad_source_files_are_named(tmp_path, srcs):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    out = tmp_path / "out"
    res = _invoke("augment", srcs[0], bad, "-t", "cat", "-o", out, *FAST)
    assert res.exit_code == 2 and "broken.png" in res.output
    assert not out.exists() or not any(out.iterdir())
    res = _invoke("augment", tmp_path / "nope.jpg", "-t", "cat", "-o", out, *FAST)
    assert res.exit_code == 2 and "nope.jpg: file not found" in res.output


def test_model_folder_missing_component_via_cli(tmp_path, srcs):
    from genie_plugin.diffusion.tiny import tiny_model_dir

    broken = tmp_path / "sd"
    shutil.copytree(tiny_model_dir(), broken)
    shutil.rmtree(broken / "vae")
    res = _invoke("augment", srcs[0], "-t", "cat", "-o", tmp_path / "o", *FAST, "--model", broken)
    assert res.exit_code == 2 and "missing component 'vae'" in res.output


def test_console_script_subprocess_is_fast_and_lazy():
    exe = shutil.which("genie") or str(Path(sys.executable).parent / "genie")
    t = time.perf_counter()
    res = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - t
    assert res.returncode == 0 and "augment" in res.stdout and "sweep" in res.stdout
    # torch must not be imported for --help
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from genie_cli.main import app; print('torch' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert probe.stdout.strip() == "False"
    assert elapsed < 10


def test_augment_guidance_interval_is_recorded(tmp_path, srcs):
    out = tmp_path / "o"
    res = _invoke("augment", srcs[0], "-t", "cat", "-o", out, *FAST, "--guidance-t-min", "0.3")
    assert res.exit_code == 0, res.output
    row = json.loads((out / "manifest.jsonl").read_text().splitlines()[0])
    assert row["model"]["guidance_t_min"] == 0.3


def test_an_interrupt_outside_a_command_is_one_line_and_130(monkeypatch, capsys):
    """The console script's own catch: an interrupt while the CLI parses or returns (outside
    handle_errors) once died by the signal (exit -2) with Python's traceback."""
    import signal

    import genie_cli
    from genie_cli import main as main_mod

    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    before = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(main_mod, "app", interrupted)
    try:
        with pytest.raises(SystemExit) as exc:
            genie_cli.run()
        # the command is over: a late interrupt has nothing to stop
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)
    assert exc.value.code == 130
    err = capsys.readouterr().err
    assert err.startswith("interrupted:") and err.count("\n") == 1
