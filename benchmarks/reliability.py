"""Fault injection on real commands: kill -9 and SIGINT at seeded random instants during
``genie bench run`` and ``genie bench generate``, then a resume; a full disk (a small tmpfs,
where this machine lets us mount one). Writes JSON with the figures and the environment.

Each trial: a fresh cache and results file; the command is started as a subprocess and sent
the signal after a seeded random delay within the uninterrupted run's duration; then the same
command runs again to the end. Checked: the resumed results equal the uninterrupted run's
(every per-episode accuracy), `genie cache verify` finds nothing bad, no traceback was printed,
SIGINT exits with 130 and one line.

    python benchmarks/reliability.py [--kill-trials 10] [--int-trials 5] [--seed 0] [--out FILE]

(trials per command: 2 × 10 kill -9 = 20, 2 × 5 SIGINT = 10 by default).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from genie_plugin.io import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
GENIE = str(Path(sys.executable).with_name("genie"))
SCENARIO = {
    "name": "reliability",
    "episodes": 4,
    "queries": 4,
    "model": "tiny-random",
    "steps": 6,
    "strategies": ["none", "genie", "genie_ada"],
}
FIELDS = ("status", "mean", "ci95", "episode_accuracies", "episodes_hash")


def _run(args, env, timeout=600):
    return subprocess.run([GENIE, *args], env=env, capture_output=True, text=True, timeout=timeout)


def _rows(path: Path) -> dict:
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return {r["strategy"]: {f: r.get(f) for f in FIELDS} for r in rows}


def _commands(work: Path, scn: Path, mode: str):
    cache, out = work / "cache", work / "results.jsonl"
    if mode == "run":
        return ["bench", "run", str(scn), "--cache", str(cache), "--out", str(out)], cache, out
    return ["bench", "generate", str(scn), "--cache", str(cache)], cache, out


def _verify(cache: Path, env) -> tuple[bool, str]:
    res = _run(["cache", "verify", str(cache)], env)
    return res.returncode == 0 and " 0 bad, 0 listed but missing" in res.stdout, res.stdout.strip()


def trial(mode: str, sig: int, delay: float, base: Path, scn: Path, env, reference) -> dict:
    work = Path(tempfile.mkdtemp(dir=base))
    args, cache, out = _commands(work, scn, mode)
    proc = subprocess.Popen(
        [GENIE, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a shell starts background jobs with SIGINT ignored, and Python keeps an inherited
        # SIG_IGN: give the command the default, as a terminal's Ctrl-C would find it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(delay)
    finished_before = proc.poll() is not None
    if not finished_before:
        proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=600)
    rec = {
        "mode": mode,
        "signal": signal.Signals(sig).name,
        "delay_s": round(delay, 2),
        "finished_before_signal": finished_before,
        "exit_code": proc.returncode,
        "traceback": "Traceback" in stderr or "Traceback" in stdout,
    }
    if sig == signal.SIGINT and not finished_before:
        lines = [x for x in stderr.splitlines() if x.strip()]
        rec["sigint_exit_130"] = proc.returncode == 130  # 0 would mean it was never delivered
        rec["sigint_one_line"] = len(lines) >= 1 and lines[-1].startswith("interrupted")
        if not (rec["sigint_exit_130"] and rec["sigint_one_line"]):
            rec["stderr_tail"] = lines[-5:]
    resumed = _run(args, env)
    rec["resume_exit_code"] = resumed.returncode
    rec["traceback"] |= "Traceback" in resumed.stderr
    ok, report = _verify(cache, env)
    rec["cache_clean"], rec["cache_report"] = ok, report
    if mode == "run":
        rec["identical"] = resumed.returncode == 0 and _rows(out) == reference
    else:  # the cache it filled gives the uninterrupted run's results
        check = _run(
            ["bench", "run", str(scn), "--cache", str(cache), "--out", str(work / "r.jsonl")], env
        )
        rec["identical"] = check.returncode == 0 and _rows(work / "r.jsonl") == reference
    shutil.rmtree(work, ignore_errors=True)
    return rec


def concurrent(base: Path, scn: Path, env, reference) -> dict:
    """Four `bench run`s at once, overlapping strategy lists, one results file and one cache:
    every row once, equal to the uninterrupted run's, and a clean cache."""
    work = Path(tempfile.mkdtemp(dir=base))
    out, cache = work / "results.jsonl", work / "cache"
    subsets = [["none", "genie"], ["genie", "genie_ada"], ["genie_ada", "none"], ["genie"]]
    procs = []
    for sub in subsets:
        args = ["bench", "run", str(scn), "--out", str(out), "--cache", str(cache)]
        args += [x for s in sub for x in ("-s", s)]
        procs.append(
            subprocess.Popen(
                [GENIE, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    done = [p.communicate(timeout=900) for p in procs]
    codes = [p.returncode for p in procs]
    tracebacks = sum("Traceback" in err for _, err in done)
    rows = [json.loads(x) for x in out.read_text().splitlines() if x.strip()]
    names = [r["strategy"] for r in rows]
    got = {r["strategy"]: {f: r.get(f) for f in FIELDS} for r in rows}
    ok, report = _verify(cache, env)
    return {
        "processes": len(subsets),
        "exit_codes": codes,
        "rows": len(rows),
        "duplicated_rows": len(names) - len(set(names)),
        "lost_rows": len({"none", "genie", "genie_ada"} - set(names)),
        "identical_to_uninterrupted": {k: got.get(k) == reference[k] for k in sorted(reference)},
        "cache_clean": ok,
        "cache_report": report,
        "tracebacks": tracebacks,
    }


def disk_full(base: Path, scn: Path, env) -> dict:
    """A 3 MB tmpfs as the cache: the run must stop with one line naming the folder; after
    the space is freed (a bigger cache folder: the same files copied), the rerun completes."""
    mnt = base / "small"
    mnt.mkdir()
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True, text=True
    )
    if mount.returncode != 0:
        return {"skipped": f"cannot mount a tmpfs here ({mount.stderr.strip() or 'not root'})"}
    try:
        args = [
            "bench",
            "run",
            str(scn),
            "--cache",
            str(mnt / "cache"),
            "--out",
            str(base / "r.jsonl"),
        ]
        res = _run(args, env)
        lines = [x for x in res.stderr.splitlines() if x.strip()]
        rec = {
            "exit_code": res.returncode,
            "one_line": bool(lines) and "No space left" in lines[-1] and len(lines[-1]) < 400,
            "traceback": "Traceback" in res.stderr,
            "message": lines[-1] if lines else "",
        }
        half = [p for p in (mnt / "cache").rglob("*.tmp")]
        rec["half_written_files"] = len(half)
        big = base / "big-cache"
        shutil.copytree(mnt / "cache", big)
        again = _run(
            ["bench", "run", str(scn), "--cache", str(big), "--out", str(base / "r.jsonl")], env
        )
        rec["rerun_after_freeing_exit_code"] = again.returncode
        return rec
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


FUZZ_TESTS = [
    "tests/core/test_properties.py",
    "tests/bench/test_faults.py::test_fuzzed_scenario_dicts_load_or_say_why",
    "tests/cli/test_fuzz_options.py",
    "tests/data/test_fuzz_datasets.py",
]


def fuzzing() -> dict:
    """Run the hypothesis suites and count the inputs each target received (from hypothesis'
    own statistics), so the figure is what ran, not what a settings decorator asks for."""
    import re

    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:xdist",
         "--hypothesis-show-statistics", *FUZZ_TESTS],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    targets, current = {}, None
    for line in res.stdout.splitlines():
        m = re.match(r"^(\S+\.py::\S+):$", line.strip())
        if m:
            current = m.group(1)
        m = re.search(r"(\d+) passing, (\d+) failing, and (\d+) invalid", line)
        if m and current:  # one line per phase (reuse, generate, shrink): summed
            t = targets.setdefault(current, {"passing": 0, "failing": 0, "invalid": 0})
            for key, val in zip(("passing", "failing", "invalid"), m.groups(), strict=True):
                t[key] += int(val)
    return {
        "pytest_exit_code": res.returncode,
        "targets": targets,
        "inputs_total": sum(t["passing"] + t["failing"] for t in targets.values()),
    }


def summarise(trials: list[dict]) -> dict:
    """Counts per command and signal. A SIGINT is handled right when the command stops with
    exit code 130 and one line, or — when it lands as the command returns, its work done —
    the command ends normally (exit 0: it exits 0 only after writing everything)."""
    summary = {}
    for mode in ("run", "generate"):
        for name in ("SIGKILL", "SIGINT"):
            ts = [t for t in trials if t["mode"] == mode and t["signal"] == name]
            hit = [t for t in ts if not t["finished_before_signal"]]
            row = {
                "trials": len(ts),
                "interrupted": len(hit),
                "identical_after_resume": sum(t["identical"] for t in ts),
                "cache_clean": sum(t["cache_clean"] for t in ts),
                "tracebacks": sum(t["traceback"] for t in ts),
            }
            if name == "SIGINT":
                stopped = [t for t in hit if t["exit_code"] == 130]
                done = [t for t in hit if t["exit_code"] == 0 and not t["traceback"]]
                row |= {
                    "exit_130_one_line": sum(t.get("sigint_one_line", False) for t in stopped),
                    "completed_as_it_landed": len(done),
                    "handled_right": sum(t.get("sigint_one_line", False) for t in stopped)
                    + len(done),
                }
            summary[f"{mode}/{name}"] = row
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--kill-trials", type=int, default=10, help="kill -9 trials per command")
    ap.add_argument("--int-trials", type=int, default=5, help="SIGINT trials per command")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--fuzz-only", action="store_true", help="only the hypothesis counts")
    ap.add_argument("--resummarise", type=Path, help="recount the summary of a results JSON")
    a = ap.parse_args()
    if a.resummarise:
        res = json.loads(a.resummarise.read_text())
        res["summary"] = summarise(res["trials"])
        atomic_write_text(a.resummarise, json.dumps(res, indent=2, sort_keys=True) + "\n")
        print(json.dumps(res["summary"], indent=2))
        return
    if a.fuzz_only:
        print(json.dumps(fuzzing(), indent=2))
        return
    sys.path.insert(0, str(ROOT))
    from genie_plugin.bench.env import environment

    base = Path(tempfile.mkdtemp(prefix="genie-reliability-"))
    env = {**os.environ, "GENIE_CACHE_DIR": str(base / "genie-cache"), "OMP_NUM_THREADS": "1"}
    env["GENIE_PROGRESS_INTERVAL"] = "5"
    scn = base / "scenario.json"
    scn.write_text(json.dumps(SCENARIO))
    t0 = time.time()
    first = _run(
        ["bench", "run", str(scn), "--cache", str(base / "ref"), "--out", str(base / "ref.jsonl")],
        env,
    )
    if first.returncode != 0:
        raise SystemExit(f"reference run failed:\n{first.stderr}")
    duration = time.time() - t0
    reference = _rows(base / "ref.jsonl")
    rng = random.Random(a.seed)
    trials = []
    for mode in ("run", "generate"):
        for sig, n in ((signal.SIGKILL, a.kill_trials), (signal.SIGINT, a.int_trials)):
            for _ in range(n):
                # SIGINT up to just past the end: an interrupt as a command returns counts too
                hi = duration * (1.05 if sig == signal.SIGINT else 0.9)
                delay = rng.uniform(1.0, max(1.5, hi))
                trials.append(trial(mode, sig, delay, base, scn, env, reference))
                print(json.dumps(trials[-1]), flush=True)
    summary = summarise(trials)
    result = {
        "scenario": SCENARIO,
        "uninterrupted_run_s": round(duration, 1),
        "summary": summary,
        "concurrent_runs": concurrent(base, scn, env, reference),
        "disk_full": disk_full(base, scn, env),
        "fuzzing": fuzzing(),
        "trials": trials,
        "environment": environment(),
    }
    out = a.out or ROOT / "benchmarks" / "results" / f"reliability_{time.strftime('%Y-%m-%d')}.json"
    atomic_write_text(out, json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps(summary, indent=2))
    print(f"wrote {out}")
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
