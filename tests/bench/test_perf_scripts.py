"""The GPU benchmark scripts run end to end on the CPU with the tiny model (smoke: the figures
they print are only meaningful on a GPU, see scripts/gpu_benchmarks.sh)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(args, out):
    res = subprocess.run(
        [sys.executable, *args, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(out.read_text())


def test_generation_throughput_reports_every_backend_and_ratio(tmp_path):
    data = _run(
        [
            "benchmarks/perf/generation_throughput.py",
            "--arch", "tiny", "--device", "cpu", "--outputs", "2", "--steps", "4",
            "--modes", "genie,genie_ada_batched,genie_ada_naive,genie_ada_fast",
            "--probe-steps", "2", "--backends", "torch,onnx", "--max-batch", "auto",
        ],
        tmp_path / "gen.json",
    )  # fmt: skip
    assert data["max_batch"] == 16  # auto on a CPU
    for backend in ("torch", "onnx"):
        for mode in ("genie", "genie_ada_batched", "genie_ada_naive"):
            r = data["results"][backend][mode]
            assert r["outputs"] == 2 and r["seconds"] > 0
            assert r["unet_image_steps"] > 0
    # batched Ada runs the same image-steps as the naive sweep, in fewer UNet calls
    t = data["results"]["torch"]
    assert t["genie_ada_batched"]["unet_image_steps"] == t["genie_ada_naive"]["unet_image_steps"]
    # the probe runs fewer image-steps: candidates at 2 steps + the outputs at r* with 4
    fast = t["genie_ada_fast"]["unet_image_steps"]
    assert t["genie"]["unet_image_steps"] < fast < t["genie_ada_batched"]["unet_image_steps"]
    assert "torch:genie_ada_fast_over_genie" in data["ratios"]
    assert "onnx_over_torch:genie" in data["ratios"]
    assert data["environment"]["versions"]["torch"]


def test_unet_throughput_reports_modes_per_batch(tmp_path):
    data = _run(
        [
            "benchmarks/perf/unet_throughput.py", "--arch", "tiny", "--device", "cpu",
            "--batches", "2,3", "--iters", "1", "--modes", "torch_eager,onnx_plain",
        ],
        tmp_path / "unet.json",
    )  # fmt: skip
    for b in ("2", "3"):
        assert data["results"][b]["torch_eager"]["image_steps_per_s"] > 0
        assert data["results"][b]["onnx_plain"]["speedup_vs_torch_eager"] > 0
