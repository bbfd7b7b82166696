"""A GPU farm rehearsed on the CPU with the embedded model: `genie bench generate` in 1 process,
in 3 under `accelerate launch --multi_gpu` (torchrun's launcher: no GPU or process group is
needed), and as `--shard i/3` with no process group fills the same
cache — every key, every image hash — and `bench run` scores the same rows from each; a shard
killed mid-way and restarted ends with the same cache, nothing stored twice.

The scenario makes GeNIe-Ada reuse GeNIe's r = 0.8 images and genie_ada_lite reuse GeNIe-Ada's
candidates: that only works when a block's strategies run in scenario order in one process,
which the claims guarantee whoever takes the block."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genie_plugin.diffusion.cache import AugmentationCache

SCENARIO = {
    "name": "farm-rehearsal",
    "model": "embedded",
    "ways": 3,  # 6 GeNIe images per episode: the cheapest scenario that still has every reuse
    "episodes": 9,  # blocks of 4: [0-3], [4-7], [8], one per rank
    "steps": 8,  # genie_ada_lite's 5-step cap thins r >= 0.7
    "queries": 2,
    "strategies": ["none", "genie", "genie_ada", "genie_ada_lite"],
}
GENIE = [sys.executable, "-m", "genie_cli.main"]
PINS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "GENIE_PROGRESS_INTERVAL": "600"}


def _env(extra=None):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    return {**env, **PINS, **(extra or {})}


def _run(args, extra=None, timeout=600):
    r = subprocess.run(args, capture_output=True, text=True, env=_env(extra), timeout=timeout)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout + r.stderr


def _files(cache: Path) -> dict[str, str]:
    return {
        p.stem: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(cache.glob("??/*.png"))
    }


def _records(cache: Path) -> list[dict]:
    return AugmentationCache(cache).records()[0]


def _rows(path: Path) -> dict:
    return {r["strategy"]: r for r in map(json.loads, path.read_text().splitlines())}


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    root = tmp_path_factory.mktemp("farm")
    scn = root / "scn.json"
    scn.write_text(json.dumps(SCENARIO))
    one, three, shards = root / "one", root / "accelerate", root / "shards"
    out = {"root": root, "scn": scn, "caches": {"one": one, "accelerate": three, "shard": shards}}
    out["one_log"] = _run([*GENIE, "bench", "generate", str(scn), "--cache", str(one)])
    accel = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or "accelerate"
    out["accelerate_log"] = _run(
        [
            accel,
            "launch",
            "--multi_gpu",  # torchrun's launcher; `--cpu` would start one process
            "--num_processes",
            "3",
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
            str(three),
        ]  # fmt: skip
    )
    procs = [
        subprocess.Popen(
            [*GENIE, "bench", "generate", str(scn), "--cache", str(shards), "--shard", f"{i}/3"],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for i in range(3)
    ]
    out["shard_logs"] = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), out["shard_logs"]
    return out


def test_one_process_accelerate_and_shards_fill_the_same_cache(farm):
    logs = farm["accelerate_log"]
    assert all(f"rank {i} of 3 (torchrun / accelerate launch" in logs for i in range(3)), logs
    assert all(f"rank {i} of 3 (--shard)" in log for i, log in enumerate(farm["shard_logs"]))
    one = _files(farm["caches"]["one"])
    # 9 episodes x 6 sources: GeNIe 54, GeNIe-Ada's other 4 ratios 216, lite's thinned probes
    assert len(one) > 54 * 5
    for name in ("accelerate", "shard"):
        cache = farm["caches"][name]
        assert _files(cache) == one, name
        recs = _records(cache)
        assert len(recs) == len({r["key"] for r in recs}) == len(one)  # one record per image
        assert {r["key"]: r["sha256"] for r in recs} == one
    # every block rendered by exactly one shard (which one depends on start-up times)
    done = [int(log.split(" of 3 blocks")[0].rsplit(" ", 1)[-1]) for log in farm["shard_logs"]]
    assert sum(done) == 3, farm["shard_logs"]


def test_rows_scored_from_each_cache_are_equal(farm, tmp_path):
    rows = {}
    for name, cache in farm["caches"].items():
        res = tmp_path / f"{name}.jsonl"
        _run([*GENIE, "bench", "run", str(farm["scn"]), "--cache", str(cache), "--out", str(res)])
        rows[name] = _rows(res)
    for s in SCENARIO["strategies"]:
        ref = rows["one"][s]
        assert ref["status"] == "ok"
        for name in ("accelerate", "shard"):
            r = rows[name][s]
            assert r.get("images_generated", 0) == 0  # every image came from the cache
            for f in ("mean", "ci95", "episode_accuracies", "episodes_hash", "cache_hits"):
                assert r.get(f) == ref.get(f), (name, s, f)
    assert rows["one"]["genie_ada"]["cache_hits"] > 0


def test_a_killed_shard_restarted_ends_with_the_same_cache(farm):
    cache = farm["root"] / "killed"
    args = [*GENIE, "bench", "generate", str(farm["scn"]), "--cache", str(cache), "--shard", "0/1"]
    p = subprocess.Popen(args, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and len(_records(cache)) < 60 and p.poll() is None:
        time.sleep(0.2)
    p.send_signal(signal.SIGKILL)
    p.wait(30)
    stored = len(_records(cache))
    assert 0 < stored < len(_files(farm["caches"]["one"])), "killed too late or too early"
    claims = list((cache / "claims").glob("*/*.claim"))
    assert claims  # the killed process held a block: the restart takes it over at once
    log = _run(args)
    assert "taken over from stopped ranks" in log, log
    assert _files(cache) == _files(farm["caches"]["one"])
    recs = _records(cache)
    assert len(recs) == len({r["key"] for r in recs})  # nothing stored twice
    generated = int(log.split(" generated,")[0].rsplit("(", 1)[-1])
    assert generated == len(recs) - stored  # only what the killed shard had not stored


def test_generate_and_run_take_the_same_image_settings():
    """Generate-then-run finds every image only if both commands take every setting that is in
    the generation key, with the same defaults: one option list, from the scenario's fields."""
    import inspect

    from genie_cli import bench

    def params(fn):
        return {n: (p.default, p.annotation) for n, p in inspect.signature(fn).parameters.items()}

    run, gen = params(bench.run), params(bench.generate)
    image_settings = ("scenario", "strategy", "dataset", "split", "root", "episodes", "ways",
                      "shots", "steps", "resolution", "guidance", "timestep_shift",
                      "guidance_t_min", "backend", "channels_last", "model", "config",
                      "backbone", "cache", "device")  # fmt: skip
    for name in image_settings:
        assert name in run and name in gen, name
        assert run[name] == gen[name], name
