"""`genie bench generate` under `accelerate launch` (2 CPU processes) fills the same cache as one
process, and the scores read from either cache are identical."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

SCENARIO = {
    "name": "tiny-shard",
    "model": "tiny-random",
    # 5 episodes = units genie[0-3], genie[4], genie_ada[0-3], genie_ada[4], dealt round-robin:
    # each process renders GeNIe's unit before GeNIe-Ada's for the same episodes, so Ada reads
    # GeNIe's r = 0.8 images from the cache in both runs. With 2 episodes the second process
    # would render them itself, in another batch (PyTorch is not batch-invariant: <= 1 uint8
    # level on < 1% of pixels) - seen on CI: 5 of 200 PNGs differed.
    "episodes": 5,
    "steps": 4,
    "queries": 2,
    "strategies": ["none", "genie", "genie_ada"],
}


def _digest(cache: Path) -> dict:
    return {
        str(p.relative_to(cache)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(cache.rglob("*.png"))
    }


# CPU results depend on the thread count: one per process in both runs.
PINS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _run(args, env_extra=None):
    env = {**os.environ, **PINS, **(env_extra or {})}
    r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout + r.stderr


def test_two_process_accelerate_launch_equals_one_process(tmp_path):
    scn = tmp_path / "scn.json"
    scn.write_text(json.dumps(SCENARIO))
    genie = [sys.executable, "-m", "genie_cli.main"]
    one, two = tmp_path / "one", tmp_path / "two"
    # CPU kernels' results depend on the thread count: compare at one thread per process
    _run([*genie, "bench", "generate", str(scn), "--cache", str(one)], {"OMP_NUM_THREADS": "1"})
    accel = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or "accelerate"
    out = _run(
        [
            accel,
            "launch",
            "--multi_gpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "-m",
            "genie_cli.main",
            "bench",
            "generate",
            str(scn),
            "--cache",
            str(two),
        ]
    )
    assert "[0/2]" in out and "[1/2]" in out  # really two shards
    d1, d2 = _digest(one), _digest(two)
    assert len(d1) == 5 * 20 * (1 + 5) - 5 * 20  # genie + 5 Ada candidates; r=0.8 shared
    assert d1 == d2
    rows = []
    for cache in (one, two):
        res = tmp_path / f"{cache.name}.jsonl"
        _run(
            [*genie, "bench", "run", str(scn), "--cache", str(cache), "--out", str(res)],
            {"OMP_NUM_THREADS": "1"},
        )
        rows.append({r["strategy"]: r for r in map(json.loads, res.read_text().splitlines())})
    for s in ("genie", "genie_ada"):
        assert rows[0][s]["images_generated"] == rows[1][s]["images_generated"] == 0
        assert rows[0][s]["mean"] == rows[1][s]["mean"]
        assert rows[0][s]["ci95"] == rows[1][s]["ci95"]
