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
            "--modes", "genie,genie_ada_batched,genie_ada_naive,genie_ada_fast,genie_ada_lite",
            "--probe-steps", "3", "--probe-item-steps", "1",
            "--backends", "torch,onnx,cuda-graphs",
            "--max-batch", "auto",
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
    # the probe runs fewer image-steps: candidates on a 3-step schedule + the outputs at r* with 4
    fast = t["genie_ada_fast"]["unet_image_steps"]
    assert t["genie"]["unet_image_steps"] < fast < t["genie_ada_batched"]["unet_image_steps"]
    assert "torch:genie_ada_fast_over_genie" in data["ratios"]
    # lite: one solver step per candidate (5 image-steps per output) + the output at r*
    # (r* cycles 0.6, 0.7: 2 + 2 steps of 4), two UNet rows per image-step (CFG)
    assert t["genie_ada_lite"]["unet_image_steps"] == 2 * (2 * 5 * 1 + 2 + 2) < fast
    assert "onnx_over_torch:genie" in data["ratios"]
    # a backend that cannot run here is reported, not fatal to the others
    assert "CUDA device" in data["errors"]["cuda-graphs"] and "cuda-graphs" not in data["results"]
    assert set(data["warmup_s"]) == {"torch", "onnx"}
    assert data["environment"]["versions"]["torch"]


def test_unet_throughput_reports_modes_per_batch(tmp_path):
    data = _run(
        [
            "benchmarks/perf/unet_throughput.py", "--arch", "tiny", "--device", "cpu",
            "--batches", "2", "--iters", "1", "--modes", "torch_eager,torch_compile,onnx_plain",
        ],
        tmp_path / "unet.json",
    )  # fmt: skip
    assert data["gflop_per_image_step"] > 0 and data["prompt_tokens"] == 77  # counted, SD's
    assert data["threads"] >= 1
    for b in ("2",):  # one batch size: torch.compile recompiles per shape (~20 s each here)
        assert data["results"][b]["torch_eager"]["image_steps_per_s"] > 0
        assert data["results"][b]["onnx_plain"]["speedup_vs_torch_eager"] > 0
        assert data["results"][b]["torch_compile"]["speedup_vs_torch_eager"] > 0


def test_ada_cost_model_counts_the_samplers_rows_and_prices_them_on_sd15(tmp_path):
    data = _run(
        [
            "benchmarks/perf/ada_cost_model.py", "--pairs", "4", "--probes", "10",
            "--item-probes", "5",
        ],
        tmp_path / "cost.json",
    )  # fmt: skip
    f, r = data["sd15_tflop"], data["results"]
    assert abs(f["unet_row"] - 0.803) < 0.01  # the 803 GFLOP per image-step
    assert f["vae_decode"] > f["vae_encode"] > 0
    # reference table: GeNIe r = 0.8 runs 40 of 50 steps; the grid 25+30+35+40+45; CFG doubles
    assert r["genie"]["unet_rows_per_output"] == 80
    assert r["genie_ada"]["unet_rows_per_output"] == 2 * 175
    assert r["genie_ada"]["vae_decodes_per_output"] == 5
    # 5 steps per candidate, then the output at r* (cycled 0.6..0.9: 37.5 steps on average)
    assert r["genie_ada_item_probe_5"]["unet_rows_per_output"] == 2 * (25 + 37.5)
    # 10-step schedule: candidates 5+6+7+8+9 steps
    assert r["genie_ada_probe_10"]["unet_rows_per_output"] == 2 * (35 + 37.5)
    ada = (350 * f["unet_row"] + f["vae_encode"] + 5 * f["vae_decode"]) / (
        80 * f["unet_row"] + f["vae_encode"] + f["vae_decode"]
    )
    assert abs(r["genie_ada"]["flop_ratio_to_genie"] - ada) < 0.01
    assert (
        r["genie_ada_item_probe_5"]["flop_ratio_to_genie"]
        < r["genie_ada_probe_10"]["flop_ratio_to_genie"]
        < r["genie_ada"]["flop_ratio_to_genie"]
    )


def test_generation_throughput_per_pair_does_the_same_work_in_more_calls(tmp_path):
    args = [
        "benchmarks/perf/generation_throughput.py", "--arch", "tiny", "--device", "cpu",
        "--outputs", "2", "--steps", "4", "--modes", "genie,genie_ada_lite", "--backends", "torch",
    ]  # fmt: skip
    packed = _run(args, tmp_path / "packed.json")
    per_pair = _run([*args, "--per-pair"], tmp_path / "pair.json")
    assert per_pair["per_pair"] and not packed["per_pair"]
    for mode in ("genie", "genie_ada_lite"):
        a, b = packed["results"]["torch"][mode], per_pair["results"]["torch"][mode]
        assert a["unet_image_steps"] == b["unet_image_steps"] > 0


def test_main_job_times_variants_cold_and_warm(tmp_path):
    """benchmarks/perf/main_job.py on a tiny scenario: each variant cold then warm, the warm
    rerun generates nothing and scores the same; --jobs 2 (one thread per process) gives the
    rows a one-thread single process gives."""
    data = _run(
        [
            "benchmarks/perf/main_job.py",
            "--args", "--model tiny-random --steps 3 --episodes 5 -s none -s genie",
            "--variant", "one=", "--variant", "jobs2=--jobs 2",
            "--env", "one=OMP_NUM_THREADS=1", "--warm-runs", "2",
        ],
        tmp_path / "main.json",
    )  # fmt: skip
    v = data["variants"]
    assert set(v) == {"one", "jobs2"}
    for r in v.values():
        assert r["cold_s"] > 0 and r["warm_s"] > 0 and r["warm_equals_cold"]
        assert len(r["warm_s_runs"]) == 2 and r["warm_s"] in r["warm_s_runs"]
        assert r["warm_images_generated"] == 0 and r["cold_images_generated"] == 5 * 20
        assert r["backends"] == ["torch"]
    assert v["jobs2"]["rows_equal_first_variant"] and v["jobs2"]["max_abs_mean_diff_vs_first"] == 0
    assert data["environment"]["versions"]["torch"]


def test_warm_commits_times_each_commit_and_refuses_a_dirty_tree(tmp_path):
    """benchmarks/perf/warm_commits.py in a clone of this repository (it checks commits out in
    the tree it lives in): one cold run, then every commit warm per round; a working tree with
    uncommitted changes is refused before anything is checked out."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=clone, check=True, capture_output=True, text=True
    ).stdout.strip()
    script = str(clone / "benchmarks" / "perf" / "warm_commits.py")
    args = "--model tiny-random --steps 2 --episodes 2 -s none -s genie"
    data = _run(
        [script, "--commits", f"HEAD,{sha}", "--rounds", "1", "--args", args],
        tmp_path / "w.json",
    )
    assert data["cold_s"] > 0 and set(data["commits"]) == {"HEAD", sha}
    for c in data["commits"].values():
        assert c["sha"] == sha[: len(c["sha"])] and len(c["warm_s_runs"]) == 1
    (clone / "README.md").write_text("changed\n")
    res = subprocess.run(
        [sys.executable, script, "--commits", "HEAD", "--out", str(tmp_path / "x.json")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode != 0 and "uncommitted changes" in res.stderr
    assert not (tmp_path / "x.json").exists()
