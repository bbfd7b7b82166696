"""The README's main job, timed cold and warm, in variants measured in the same run.

Each variant runs ``genie bench run`` (the embedded benchmark unless ``--args`` says otherwise)
as a fresh process: once cold (an empty augmentation cache and an empty cache root: nothing
generated, no dataset arrays, no ONNX export, as on a fresh machine), then warm (the same
folders again; ``--warm-runs`` times, the median recorded). Variants run one after another, never side by side, and their rows are compared (the
per-episode accuracies of every strategy) so a speed-up that changes a number is visible.

    python benchmarks/perf/main_job.py --variant base= --variant jobs2="--jobs 2" --out FILE
    python benchmarks/perf/main_job.py --variant one= --env one=OMP_NUM_THREADS=1 ...
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from genie_plugin.bench.env import environment  # noqa: E402
from genie_plugin.io import atomic_write_text  # noqa: E402

GENIE = str(Path(sys.executable).with_name("genie"))


def run_once(args: list[str], work: Path, cache_root: Path, extra_env: dict) -> dict:
    env = {**os.environ, "GENIE_CACHE_DIR": str(cache_root), "GENIE_PROGRESS_INTERVAL": "60"}
    env.update(extra_env)
    cmd = [GENIE, "bench", "run", *args, "--out", str(work / "r.jsonl")]
    cmd += ["--cache", str(work / "cache")]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    rows = [json.loads(x) for x in (work / "r.jsonl").read_text().splitlines() if x.strip()]
    return {
        "wall_s": round(wall, 1),
        "rows": {r["strategy"]: r["episode_accuracies"] for r in rows},
        "means": {r["strategy"]: r["mean"] for r in rows},
        "backends": sorted(
            {r.get("model", {}).get("backend", "torch") for r in rows if "model" in r}
        ),
        "strategy_wall_s": {r["strategy"]: r["wall_s"] for r in rows},
        "images_generated": sum(r.get("images_generated", 0) for r in rows),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", action="append", required=True, help="NAME=EXTRA ARGS")
    ap.add_argument("--args", default="", help="bench run arguments shared by every variant")
    ap.add_argument(
        "--env",
        action="append",
        default=[],
        help="NAME=VAR=VALUE: an environment variable for one variant (e.g. OMP_NUM_THREADS=1)",
    )
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--warm-runs", type=int, default=3, help="warm repeats; warm_s is their median")
    a = ap.parse_args()
    envs: dict[str, dict] = {}
    for spec in a.env:
        name, _, assign = spec.partition("=")
        var, _, value = assign.partition("=")
        envs.setdefault(name, {})[var] = value
    results: dict = {}
    for spec in a.variant:
        name, _, extra = spec.partition("=")
        args = shlex.split(a.args) + shlex.split(extra)
        env = envs.get(name, {})
        with tempfile.TemporaryDirectory(prefix=f"mainjob-{name}-") as tmp:
            work, root = Path(tmp) / "work", Path(tmp) / "cache-root"
            work.mkdir()
            cold = run_once(args, work, root, env)
            warms = [run_once(args, work, root, env) for _ in range(a.warm_runs)]
        # a warm run is short enough for machine noise to matter: the median of several
        warm = sorted(warms, key=lambda w: w["wall_s"])[len(warms) // 2]
        same = all(cold["rows"] == w["rows"] for w in warms)
        results[name] = {
            "args": args,
            "env": env,
            "cold_images_generated": cold["images_generated"],
            "warm_images_generated": warm["images_generated"],
            "cold_s": cold["wall_s"],
            "warm_s": warm["wall_s"],
            "warm_s_runs": [w["wall_s"] for w in warms],
            "warm_equals_cold": same,
            "strategy_wall_s_cold": cold["strategy_wall_s"],
            "means": cold["means"],
            "backends": cold["backends"],
            "rows": cold["rows"],
        }
        print(f"{name}: cold {cold['wall_s']} s, warm {warm['wall_s']} s", flush=True)
    first = next(iter(results.values()))
    for r in results.values():
        # equal rows need equal kernels: a variant of other threads or backend differs in the
        # last bits, so its accuracies move a little; how much is recorded
        r["rows_equal_first_variant"] = r["rows"] == first["rows"]
        r["max_abs_mean_diff_vs_first"] = max(
            (abs(m - first["means"][s]) for s, m in r["means"].items() if s in first["means"]),
            default=0.0,
        )
    for r in results.values():
        r.pop("rows")
    out = {"benchmark": "main_job", "variants": results, "environment": environment()}
    atomic_write_text(a.out, json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
