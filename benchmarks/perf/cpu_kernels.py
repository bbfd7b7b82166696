"""The committed board's check under other CPU kernels: OpenBLAS core types and numpy SIMD sets.

A one-off experiment, never run by tests or CI (those must leave ``OPENBLAS_CORETYPE`` as the
machine sets it). Each variant runs the leaderboard check's prefix (``genie bench run
embedded-5w1s --episodes N`` under the check's torch pins) as a fresh process with one more
environment setting, and compares every strategy's per-episode accuracies with the committed
first N and with the first variant's. Only core types and numpy features this CPU can run
make sense: OpenBLAS refuses none, but a kernel set the CPU lacks dies on its first call.

Cold runs (``--cold``) generate every image; the others share one image cache (filled by the
first cold variant) with the backbone-feature memo removed before each, so what they compare is
everything after generation: features, GeNIe-Ada's r*, the logistic regressions. A cold run
under another variant shows whether generation itself moved (its manifest's image hashes are
compared with the first cold run's).

    python benchmarks/perf/cpu_kernels.py --episodes 20 --tree . \\
        --variant base= --variant skx=OPENBLAS_CORETYPE=SkylakeX --cold base --out FILE
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from genie_plugin.io import atomic_write_text  # noqa: E402

GENIE = str(Path(sys.executable).with_name("genie"))
COMMITTED = ROOT / "benchmarks" / "results" / "embedded-5w1s.jsonl"
#: the leaderboard check's pins (scripts/check_leaderboard.sh), applied to every variant
CHECK_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_CBWR": "AVX2",
}


def rows_of(path: Path) -> dict[str, list[float]]:
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return {r["strategy"]: r.get("episode_accuracies") or [] for r in rows}


def image_hashes(cache: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for f in sorted(cache.glob("manifest*.jsonl")) + sorted(cache.glob("manifests/*.jsonl")):
        for line in f.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            out[rec["key"]] = rec["sha256"]
    return out


def blas_info(env: dict, tree: Path) -> list[dict]:
    code = (
        "import numpy, scipy.linalg, json; from threadpoolctl import threadpool_info;"
        "print(json.dumps([{k: i.get(k) for k in ('prefix', 'architecture', 'version')}"
        " for i in threadpool_info() if i.get('user_api') == 'blas']))"
    )
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return json.loads(p.stdout) if p.returncode == 0 else [{"error": p.stderr[-300:]}]


def numpy_simd(env: dict) -> list[str]:
    code = (
        "import numpy, json; from numpy._core._multiarray_umath import __cpu_features__ as f;"
        "print(json.dumps(sorted(k for k, v in f.items() if v)))"
    )
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return json.loads(p.stdout) if p.returncode == 0 else [p.stderr[-300:]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", action="append", required=True, help="NAME=VAR=VALUE[,VAR=VALUE]")
    ap.add_argument("--cold", action="append", default=[], help="variants run with no cache")
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--tree", type=Path, default=ROOT, help="source tree to run (PYTHONPATH)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    committed = rows_of(COMMITTED)
    work = Path(tempfile.mkdtemp(prefix="cpu-kernels-"))
    shared = work / "shared-cache"
    results: dict[str, dict] = {}
    first: dict[str, list[float]] | None = None
    first_hashes: dict[str, str] | None = None
    variants = [v.split("=", 1) for v in args.variant]
    # cold variants first: the first of them fills the shared image cache
    variants.sort(key=lambda nv: nv[0] not in args.cold)
    try:
        for name, spec in variants:
            extra = dict(kv.split("=", 1) for kv in spec.split(",") if kv)
            env = {**os.environ, **CHECK_ENV, **extra, "PYTHONPATH": str(args.tree.resolve())}
            env["GENIE_CACHE_DIR"] = str(work / f"root-{name}")
            env["GENIE_PROGRESS_INTERVAL"] = "600"
            cold = name in args.cold
            cache = work / f"cache-{name}" if cold else shared
            if cold and not shared.exists():
                cache = shared
            shutil.rmtree(cache / "features", ignore_errors=True)
            out = work / f"{name}.jsonl"
            cmd = [GENIE, "bench", "run", "embedded-5w1s", "--episodes", str(args.episodes)]
            cmd += ["--jobs", str(args.jobs), "--out", str(out), "--cache", str(cache)]
            t0 = time.perf_counter()
            p = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=args.tree)
            wall = round(time.perf_counter() - t0, 1)
            entry: dict = {"env": extra, "cold": cold, "wall_s": wall, "rc": p.returncode}
            entry["blas"] = blas_info(env, args.tree)
            entry["numpy_simd"] = numpy_simd(env)
            if p.returncode != 0:
                entry["error"] = p.stderr[-1500:]
                results[name] = entry
                print(f"{name}: failed ({p.returncode})", file=sys.stderr)
                continue
            rows = rows_of(out)
            first = first if first is not None else rows
            n = args.episodes
            entry["episodes_differing_from_committed"] = {
                s: sum(a != b for a, b in zip(acc, committed.get(s, [])[:n], strict=False))
                for s, acc in rows.items()
            }
            entry["episodes_differing_from_first_variant"] = {
                s: sum(a != b for a, b in zip(acc, first.get(s, []), strict=False))
                for s, acc in rows.items()
            }
            entry["differing_episodes"] = {
                s: [
                    (i, committed[s][i], a)
                    for i, a in enumerate(acc)
                    if i < len(committed.get(s, [])) and a != committed[s][i]
                ]
                for s, acc in rows.items()
            }
            if cold:
                hashes = image_hashes(cache)
                first_hashes = first_hashes if first_hashes is not None else hashes
                entry["images"] = len(hashes)
                entry["images_differing_from_first_cold"] = sum(
                    first_hashes.get(k) != h for k, h in hashes.items()
                ) + len(first_hashes.keys() - hashes.keys())
            results[name] = entry
            total = sum(entry["episodes_differing_from_committed"].values())
            print(f"{name}: {wall} s, {total} per-episode accuracies differ", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    doc = {
        "what": "embedded-5w1s check prefix under other OpenBLAS core types / numpy SIMD sets",
        "episodes": args.episodes,
        "strategies": sorted(committed),
        "check_env": CHECK_ENV,
        "machine_env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")},
        "cpu": platform.processor() or platform.machine(),
        "cpu_model": next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")
            ),
            "",
        ),  # fmt: skip
        "tree": subprocess.run(
            ["git", "-C", str(args.tree), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
        "variants": results,
    }
    atomic_write_text(args.out, json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
