"""Mutation score of the modules whose bugs would silently change results (issue 19).

Runs mutmut (configuration: ``[tool.mutmut]`` in pyproject.toml: the modules and the tests that
exercise them), then writes per-module figures as JSON: mutants, killed, survived, equivalent
(listed with a reason in ``benchmarks/mutation_equivalent.json``), timeouts (counted as killed:
the mutant made the tests hang), and the score = killed / (mutants − equivalent).

    pip install -e '.[mutation]'
    python benchmarks/mutation.py [--out FILE] [--max-children 2] [--reuse] [PATTERN ...]

PATTERNs (fnmatch over mutant names, e.g. ``'genie_plugin.core.plan.*'``) run a part; mutmut keeps
each mutant's result in ``mutants/``, so parts add up and ``--reuse`` scores what is there. All
1402 mutants take about 3 hours on 2 cores (the sampler's and the views' tests load a model per
mutant: ~5 a minute); not part of CI.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from genie_plugin.io import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
MUTMUT = str(Path(sys.executable).with_name("mutmut"))
EQUIVALENT = ROOT / "benchmarks" / "mutation_equivalent.json"
KILLED = {"killed", "timeout", "segfault", "suspicious"}


def _module(mutant: str) -> str:
    """``genie_plugin.core.schedule.x_start_index__mutmut_3`` -> ``genie_plugin.core.schedule``."""
    return mutant.rsplit(".", 1)[0]


def results() -> dict[str, str]:
    out = subprocess.run(
        [MUTMUT, "results", "--all", "true"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    found = {}
    for line in out.splitlines():
        m = re.match(r"^\s*(\S+__mutmut_\d+): (.+)$", line)
        if m:
            found[m.group(1)] = m.group(2).strip()
    return found


def score(status: dict[str, str], equivalent: dict[str, str]) -> dict:
    """Per module: killed (timeouts included, also counted apart), survived (with the names),
    equivalent, not checked (a run cut short); score = killed / (checked − equivalent)."""
    per: dict[str, Counter] = defaultdict(Counter)
    survivors: dict[str, list[str]] = defaultdict(list)
    for name, st in sorted(status.items()):
        mod = _module(name)
        per[mod]["mutants"] += 1
        if st == "not checked":
            per[mod]["not_checked"] += 1
        elif name in equivalent:
            per[mod]["equivalent"] += 1
        elif st in KILLED:
            per[mod]["killed"] += 1
            per[mod]["timeout"] += st == "timeout"
        else:
            per[mod]["survived"] += 1
            survivors[mod].append(f"{name}: {st}")
    modules = {}
    for mod, c in sorted(per.items()):
        live = c["mutants"] - c["not_checked"] - c["equivalent"]
        modules[mod] = {
            **{k: c[k] for k in ("mutants", "killed", "timeout", "survived", "equivalent",
                                 "not_checked")},
            "complete": c["not_checked"] == 0,
            "score": round(c["killed"] / live, 4) if live else None,
            "survivors": survivors.get(mod, []),
        }  # fmt: skip
    total = sum(per.values(), Counter())
    live = total["mutants"] - total["not_checked"] - total["equivalent"]
    return {
        "modules": modules,
        "total": {
            **{
                k: total[k]
                for k in ("mutants", "killed", "timeout", "survived", "equivalent", "not_checked")
            },
            "score": round(total["killed"] / live, 4) if live else None,
        },  # fmt: skip
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--max-children", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--reuse", action="store_true", help="score the existing mutants/ run")
    ap.add_argument("patterns", nargs="*", help="run only the mutants these names match")
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from genie_plugin.bench.env import environment

    t0 = time.time()
    if not a.reuse:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        run = subprocess.run(
            [MUTMUT, "run", "--max-children", str(a.max_children), *a.patterns], cwd=ROOT, env=env
        )
        if run.returncode != 0:
            raise SystemExit(f"mutmut run failed (exit {run.returncode})")
    equivalent = json.loads(EQUIVALENT.read_text()) if EQUIVALENT.exists() else {}
    status = results()
    if not status:
        raise SystemExit("mutmut reported no mutants: run without --reuse first")
    unknown = sorted(set(equivalent) - set(status))
    result = {
        **score(status, equivalent),
        "equivalent": equivalent,
        "equivalent_not_found": unknown,  # stale entries (the code moved): review them
        "wall_s": None if a.reuse else round(time.time() - t0, 1),
        "environment": environment(),
    }
    out = a.out or ROOT / "benchmarks" / "results" / f"mutation_{time.strftime('%Y-%m-%d')}.json"
    if a.reuse and out.exists():  # re-scoring: keep the wall time of the run that checked them
        result["wall_s"] = json.loads(out.read_text()).get("wall_s")
    atomic_write_text(out, json.dumps(result, indent=2, sort_keys=True) + "\n")
    for mod, r in result["modules"].items():
        live = r["mutants"] - r["not_checked"] - r["equivalent"]
        todo = "" if r["complete"] else f"  ({r['not_checked']} not checked)"
        print(f"{mod:40s} killed {r['killed']:4d}/{live:4d}  score {r['score']}{todo}")
    print(f"total score {result['total']['score']}; wrote {out}")


if __name__ == "__main__":
    main()
