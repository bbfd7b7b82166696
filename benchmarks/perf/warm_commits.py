"""The README's main command, warm, at several commits in the same run (interleaved rounds).

A change that only touches what a warm run does (startup, cache reads, scoring) is measured
against its parent on the same cache: one cold run at the first commit fills an augmentation
cache and cache root, then each round runs ``genie bench run ARGS`` once per commit, checking
the commit out in this working tree in between (the editable install runs whatever is checked
out, its bytecode compiled), so machine drift spreads over every commit alike; an untimed
first round lets each commit write what its own warm runs read (e.g. the model facts). Rows
of every run must equal the cold run's (per-episode accuracies, counts), else the script
stops. Refuses a dirty working tree.

    python benchmarks/perf/warm_commits.py --commits e232fa0,HEAD --rounds 5 --out FILE
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
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


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()


def checkout(sha: str) -> None:
    """Check ``sha`` out and compile its bytecode, as setup does: without that, a file that
    differs between the commits is compiled anew in every process (the checkout changed its
    mtime, and CI's environment writes no bytecode), a cost no user pays."""
    git("checkout", "-q", sha)
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "genie_plugin", "cli"],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip


def run(args: list[str], work: Path) -> tuple[float, dict]:
    env = {**os.environ, "GENIE_CACHE_DIR": str(work / "root"), "GENIE_PROGRESS_INTERVAL": "60"}
    out = work / "r.jsonl"
    out.unlink(missing_ok=True)
    cmd = [GENIE, "bench", "run", *args, "--out", str(out), "--cache", str(work / "cache")]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    rows = {}
    for line in out.read_text().splitlines():
        r = json.loads(line)
        rows[r["strategy"]] = (r["episode_accuracies"], r.get("unet_rows"), r.get("model"))
    return round(wall, 2), rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commits", required=True, help="comma-separated commits (any git ref)")
    ap.add_argument("--args", default="--jobs auto --backend auto", help="bench run arguments")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    if git("status", "--porcelain", "--untracked-files=no"):
        raise SystemExit("the working tree has uncommitted changes: commit or stash them first")
    start = git("rev-parse", "--abbrev-ref", "HEAD")
    if start == "HEAD":
        start = git("rev-parse", "HEAD")
    commits = {c: git("rev-parse", "--short", c) for c in a.commits.split(",")}
    args = shlex.split(a.args)
    times: dict[str, list[float]] = {c: [] for c in commits}
    try:
        with tempfile.TemporaryDirectory(prefix="warm-commits-") as tmp:
            work = Path(tmp)
            checkout(commits[next(iter(commits))])
            cold_s, cold_rows = run(args, work)
            print(f"cold at {next(iter(commits))}: {cold_s} s", flush=True)
            for k in range(a.rounds + 1):  # round 0, untimed: what a commit's own first
                for c, sha in commits.items():  # warm run records (model facts) is there
                    checkout(sha)
                    wall, rows = run(args, work)
                    if rows != cold_rows:
                        raise SystemExit(f"{c}: rows differ from the cold run's")
                    if k:
                        times[c].append(wall)
                    print(f"round {k} {c} ({sha}): {wall} s", flush=True)
    finally:
        checkout(start)
    out = {
        "benchmark": "warm_commits",
        "args": args,
        "cold_s": cold_s,
        "commits": {
            c: {"sha": commits[c], "warm_s_runs": t, "warm_s_median": statistics.median(t)}
            for c, t in times.items()
        },
        "environment": environment(),
    }
    atomic_write_text(a.out, json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
