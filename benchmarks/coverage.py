"""Branch coverage of ``genie_plugin`` and ``genie_cli`` from the CI suite (issue 19).

Runs the suite CI runs (``-m "not slow and not gpu"``, two xdist workers, in random order via
pytest-randomly: also the order-independence check) under coverage.py with subprocesses
measured, then writes JSON: the total, each file's figure and its uncovered lines. Lines that
only a GPU or a real checkpoint reaches carry ``# pragma: no cover`` with the reason.

    python benchmarks/coverage.py [--seed 12345] [--out FILE]      (about 16 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from genie_plugin.io import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seed", type=int, default=12345, help="pytest-randomly's order seed")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from genie_plugin.bench.env import environment

    data = ROOT / ".coverage-data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir()
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "COVERAGE_PROCESS_START": str(ROOT / "pyproject.toml"),
    }
    t0 = time.time()
    cov = [sys.executable, "-m", "coverage"]
    tests = subprocess.run(
        [*cov, "run", "-m", "pytest", "-q", "-m", "not slow and not gpu", "-n", "2",
         "-p", "randomly", "-p", "no:cacheprovider", f"--randomly-seed={a.seed}",
         "--durations=20"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    wall = time.time() - t0
    summary = [x for x in tests.stdout.splitlines() if " passed" in x or " failed" in x][-1:]
    # the slowest tests (under coverage: slower than in CI), for keeping CI's time in check
    slowest = [
        x.strip() for x in tests.stdout.splitlines() if re.match(r"\d+\.\d+s (call|setup) ", x)
    ]
    subprocess.run([*cov, "combine", "-q"], cwd=ROOT, check=True)
    report = data / "coverage.json"
    subprocess.run([*cov, "json", "-q", "-o", str(report)], cwd=ROOT, check=True)
    raw = json.loads(report.read_text())
    files = {}
    for path, f in sorted(raw["files"].items()):
        s = f["summary"]
        files[path] = {
            "percent": round(s["percent_covered"], 1),
            "statements": s["num_statements"],
            "missing_lines": f["missing_lines"],
            "branches": s.get("num_branches", 0),
            "partial_branches": s.get("num_partial_branches", 0),
        }
    t = raw["totals"]
    result = {
        "total_percent": round(t["percent_covered"], 2),
        "statements": t["num_statements"],
        "missing_statements": t["missing_lines"],
        "branches": t["num_branches"],
        "partial_branches": t["num_partial_branches"],
        "missing_branches": t["missing_branches"],
        "pytest_exit_code": tests.returncode,
        "pytest_summary": summary[0] if summary else tests.stdout[-2000:],
        "random_order_seed": a.seed,
        "slowest_tests": slowest,
        "wall_s": round(wall, 1),
        "files": files,
        "environment": environment(),
    }
    out = a.out or ROOT / "benchmarks" / "results" / f"coverage_{time.strftime('%Y-%m-%d')}.json"
    atomic_write_text(out, json.dumps(result, indent=2, sort_keys=True) + "\n")
    worst = sorted(files.items(), key=lambda kv: kv[1]["percent"])[:15]
    for path, f in worst:
        print(f"{f['percent']:6.1f}%  {path}  missing {len(f['missing_lines'])}")
    print(f"total {result['total_percent']}% (branch); tests: {result['pytest_summary']}")
    print(f"wrote {out}")
    if tests.returncode != 0:
        print(tests.stdout[-5000:])
        raise SystemExit(tests.returncode)


if __name__ == "__main__":
    main()
