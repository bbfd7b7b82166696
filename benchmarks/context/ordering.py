"""The ordering question (issue 17): paired differences between strategies on committed boards.

For each results file: every strategy's mean ± 95% CI and the paired contrasts the paper orders
(GeNIe − Text2Image, GeNIe-Ada − GeNIe, GeNIe-Ada − Text2Image, and each against ``none`` and
``weak``), on the same episodes. Writes JSON (figures + environment) and prints Markdown.

    python benchmarks/context/ordering.py RESULTS.jsonl [...] --out FILE
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from genie_plugin.bench.env import environment  # noqa: E402
from genie_plugin.bench.leaderboard import load_rows  # noqa: E402
from genie_plugin.bench.report import pairwise  # noqa: E402
from genie_plugin.io import atomic_write_text  # noqa: E402

CONTRASTS = (
    ("genie", "text2image"),
    ("genie_ada", "genie"),
    ("genie_ada", "text2image"),
    ("genie", "weak"),
    ("text2image", "weak"),
    ("genie_ada", "weak"),
    ("genie", "none"),
    ("text2image", "none"),
    ("genie_ada", "none"),
    ("weak", "none"),
)


def board(rows: list[dict]) -> dict:
    pw = pairwise(rows)
    idx = {n: i for i, n in enumerate(pw["names"])}
    first = next(r for r in rows if r.get("status") == "ok")
    out = {
        "scenario": first.get("scenario"),
        "dataset": first.get("dataset"),
        "backbone": first.get("backbone"),
        "shots": first.get("shots"),
        "episodes": first.get("episodes"),
        "episodes_hash": first.get("episodes_hash"),
        "strategies": {
            r["strategy"]: {"mean": r["mean"], "ci95": r["ci95"]}
            for r in rows
            if r.get("status") == "ok"
        },
        "contrasts": {},
    }
    for a, b in CONTRASTS:
        if a in idx and b in idx and pw["cells"][idx[a]][idx[b]] is not None:
            d, ci = pw["cells"][idx[a]][idx[b]]
            out["contrasts"][f"{a} - {b}"] = {
                "delta": d,
                "ci95": ci,
                "excludes_0": abs(d) > ci,
            }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    boards = {p.name: board(load_rows([p])) for p in a.results}
    atomic_write_text(
        a.out,
        json.dumps({"boards": boards, "environment": environment()}, indent=1, sort_keys=True)
        + "\n",
    )
    names = [f"{x} − {y}" for x, y in CONTRASTS]
    print("| board | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for name, b in boards.items():
        cells = []
        for x, y in CONTRASTS:
            c = b["contrasts"].get(f"{x} - {y}")
            cells.append(
                "–"
                if c is None
                else f"{c['delta']:+.2f} ± {c['ci95']:.2f}" + ("*" if c["excludes_0"] else "")
            )
        print(f"| {name} ({b['episodes']} ep., {b['shots']}-shot) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
