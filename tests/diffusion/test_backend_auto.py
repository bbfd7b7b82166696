"""--backend auto: every backend that runs here is timed on the same UNet batch, the fastest
is chosen, the choice is cached per model/device/libraries and recorded as the real backend."""

import json

import pytest
import torch
from typer.testing import CliRunner

from genie_cli.main import app
from genie_plugin.diffusion import auto
from genie_plugin.diffusion.model import check_backend


def test_cpu_candidates_are_torch_and_onnx_with_reasons_for_the_rest():
    names, skipped = auto.candidates("cpu")
    assert names == ["torch", "onnx"]  # onnxruntime is a dependency
    assert "cuda-graphs" in skipped and "CUDA" in skipped["cuda-graphs"]
    assert check_backend("auto") == "auto"


def test_the_fastest_measured_backend_is_chosen_and_the_choice_cached(tiny_gen, monkeypatch):
    calls = []

    def fake_time(gen, backend, *, batch, iters, seed=0):
        calls.append(backend)
        return {"torch": 9.0, "onnx": 4.0}[backend]

    monkeypatch.setattr(auto, "time_backend", fake_time)
    key_batch = 7  # a batch no other test uses: a fresh cache entry
    c = auto.choose_backend(tiny_gen, batch=key_batch)
    assert (c.backend, c.cached, c.ms_per_call) == ("onnx", False, {"torch": 9.0, "onnx": 4.0})
    assert "auto → onnx" in c.summary() and "measured now" in c.summary()
    assert calls == ["torch", "onnx"]

    def no_timing(*a, **k):
        raise AssertionError("a cached choice is not measured again")

    monkeypatch.setattr(auto, "time_backend", no_timing)
    again = auto.choose_backend(tiny_gen, batch=key_batch)
    assert (again.backend, again.cached) == ("onnx", True)
    # the other way round on another batch: the choice follows the measurement
    monkeypatch.setattr(auto, "time_backend", lambda g, b, **k: {"torch": 1.0, "onnx": 2.0}[b])
    assert auto.choose_backend(tiny_gen, batch=key_batch + 1).backend == "torch"


def test_a_backend_that_fails_here_is_skipped_with_its_reason(tiny_gen, monkeypatch):
    def flaky(gen, backend, *, batch, iters, seed=0):
        if backend == "onnx":
            raise RuntimeError("export failed\nsecond line")
        return 3.0

    monkeypatch.setattr(auto, "time_backend", flaky)
    c = auto.choose_backend(tiny_gen, batch=5, use_cache=False)
    assert c.backend == "torch" and c.skipped["onnx"] == "RuntimeError: export failed"


def test_real_calibration_on_the_tiny_model(tiny_gen):
    ms = auto.time_backend(tiny_gen, "torch", batch=2, iters=2)
    assert ms > 0
    c = auto.choose_backend(tiny_gen, batch=3, iters=2)
    assert c.backend in ("torch", "onnx") and set(c.ms_per_call) == {"torch", "onnx"}
    assert c.ms_per_call[c.backend] == min(c.ms_per_call.values())
    resolved = tiny_gen.with_backend("auto")
    assert resolved.backend in ("torch", "onnx")  # never "auto"
    assert "auto →" in resolved.stats["backend_choice"]


def test_augment_with_auto_prints_and_records_the_choice(tmp_path):
    from tests.conftest import make_image

    make_image(0).save(tmp_path / "src.png")
    r = CliRunner().invoke(
        app,
        [
            "augment",
            str(tmp_path / "src.png"),
            "--target",
            "star",
            "--strategy",
            "genie",
            "--model",
            "tiny-random",
            "--steps",
            "4",
            "--backend",
            "auto",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "backend auto →" in r.output
    rec = json.loads((tmp_path / "out" / "manifest.jsonl").read_text().splitlines()[0])
    assert rec["model"].get("backend", "torch") in ("torch", "onnx")


@pytest.mark.parametrize("bad", ["fastest", "Auto"])
def test_unknown_backend_names_list_auto(bad):
    from genie_plugin.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="auto"):
        check_backend(bad)


def test_bench_run_with_auto_prints_the_choice_and_records_the_backend(tmp_path):
    out = tmp_path / "r.jsonl"
    r = CliRunner().invoke(
        app,
        [
            "bench",
            "run",
            "--model",
            "tiny-random",
            "--steps",
            "4",
            "--episodes",
            "1",
            "-s",
            "none",
            "-s",
            "genie",
            "--backend",
            "auto",
            "--device",
            "cpu",
            "--out",
            str(out),
            "--cache",
            str(tmp_path / "cache"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "backend auto →" in r.output
    rows = {json.loads(x)["strategy"]: json.loads(x) for x in out.read_text().splitlines()}
    chosen = rows["genie"]["scenario_config"]["backend"]
    assert chosen in ("torch", "onnx")  # the run records what ran, never "auto"
    assert rows["genie"]["model"].get("backend", "torch") == chosen


def test_jobs_with_auto_time_one_thread_and_reuse_the_choice_without_loading(tmp_path, monkeypatch):
    """--jobs N workers run one thread each: auto times the backends with one thread, and the
    next run finds that cached choice without loading the model in the parent."""
    from genie_plugin.diffusion.loading import cached_backend_choice

    monkeypatch.setenv("GENIE_CACHE_DIR", str(tmp_path / "root"))
    args = [
        "bench", "run", "--model", "tiny-random", "--steps", "3", "--episodes", "1",
        "-s", "genie", "--backend", "auto", "--jobs", "2", "--device", "cpu",
        "--out", str(tmp_path / "r.jsonl"), "--cache", str(tmp_path / "cache"),
    ]  # fmt: skip
    r1 = CliRunner().invoke(app, args)
    assert r1.exit_code == 0, r1.output
    assert "measured now" in r1.output
    records = list((tmp_path / "root" / "backends").glob("*.json"))
    assert len(records) == 1
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert cached_backend_choice("tiny-random", "cpu") is None  # timed for one thread only
        torch.set_num_threads(1)
        choice = cached_backend_choice("tiny-random", "cpu")
    finally:
        torch.set_num_threads(threads)
    assert choice is not None and choice.cached

    def no_load(*a, **k):
        raise AssertionError("the parent loaded the model")

    monkeypatch.setattr("genie_plugin.bench.runner.scenario_generator", no_load)
    r2 = CliRunner().invoke(app, args)
    assert r2.exit_code == 0, r2.output
    assert f"auto → {choice.backend}" in r2.output and "cached choice" in r2.output
    row = json.loads((tmp_path / "r.jsonl").read_text().splitlines()[0])
    assert row["scenario_config"]["backend"] == choice.backend


def test_bench_generate_with_auto_loads_the_model_once(tmp_path, monkeypatch):
    """The model ``--backend auto`` loaded to time the backends is the one that generates."""
    from genie_plugin.diffusion import loading

    monkeypatch.setenv("GENIE_CACHE_DIR", str(tmp_path / "root"))
    loads = []
    real = loading.load_generator

    def counted(*a, **k):
        loads.append(a)
        return real(*a, **k)

    monkeypatch.setattr(loading, "load_generator", counted)
    r = CliRunner().invoke(
        app,
        [
            "bench", "generate", "--model", "tiny-random", "--episodes", "1",
            "-s", "genie", "--backend", "auto", "--device", "cpu",
            "--cache", str(tmp_path / "cache"),
        ],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "backend auto →" in r.output and "generated" in r.output
    assert len(loads) == 1
