"""Where the accuracy of a shapes-ctx board comes from: each query is on its class's typical
background (the correlated case, 80% of images) or not; this re-scores a finished board from its
cache (nothing is generated; the features store serves the embeddings) and splits every
strategy's query accuracy into the two groups, per episode, with paired differences against
``none``. Each episode's two groups add back up to the board's per-episode accuracy (checked).

    python benchmarks/context/breakdown.py SCENARIO RESULTS --cache DIR --out FILE
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from genie_plugin.bench.env import environment  # noqa: E402
from genie_plugin.io import atomic_write_text  # noqa: E402

GROUPS = ("typical", "atypical", "all")
CONTRASTS = (("genie", "text2image"), ("genie_ada", "genie"), ("genie_ada", "text2image"))


def typical_flags(scn) -> dict[int, bool]:
    """Dataset index -> whether the image lies on its class's typical hue (novel split order:
    class by class, ``DEFAULT_PER_CLASS`` each, as :func:`load_arrays` generates them)."""
    from genie_plugin.embedded import shapes
    from genie_plugin.embedded.dataset import CONTEXT_RHO, DEFAULT_PER_CLASS, shapes_split

    rho = CONTEXT_RHO if scn.dataset == "shapes-ctx" else 0.0
    flags, i = {}, 0
    for name in shapes.SPLITS[shapes_split(scn.split)]:
        _, params = shapes.generate_class(name, DEFAULT_PER_CLASS, context_rho=rho)
        for p in params:
            flags[i] = shapes.is_typical_context(name, p)
            i += 1
    return flags


def main() -> None:
    import numpy as np

    from genie_plugin.bench.leaderboard import load_rows
    from genie_plugin.bench.runner import (
        MAX_BATCH,
        UNIT_EPISODES,
        episode_unit,
        scenario_episodes,
        scenario_generator,
        score_unit,
    )
    from genie_plugin.bench.scenario import Scenario
    from genie_plugin.core.stats import mean_ci95, paired_diff_ci95
    from genie_plugin.diffusion.cache import AugmentationCache, CachedGenerator
    from genie_plugin.fewshot.backbones import MemoEmbedder, load_backbone

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", type=Path)
    ap.add_argument("results", type=Path)
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--episodes", type=int, default=None, help="the first N (default: all)")
    a = ap.parse_args()

    scn = Scenario.load(a.scenario)
    rows = {r["strategy"]: r for r in load_rows([a.results]) if r["scenario"] == scn.name}
    data, episodes = scenario_episodes(scn)
    n = min(a.episodes or len(episodes), len(episodes))
    flags = typical_flags(scn)
    embed = MemoEmbedder(load_backbone(scn.backbone, device="cpu"), store=a.cache / "features")
    gen = None
    per: dict[str, dict[str, list[float]]] = {}
    for sname in scn.labels:
        strategy = scn.ref(sname).create()
        if getattr(strategy, "mix", None):
            continue  # soft labels: mixed views, not the real/generated split asked about
        cached = None
        if strategy.generative:
            gen = gen or scenario_generator(scn, "cpu", lazy=True)
            cached = CachedGenerator(gen, AugmentationCache(a.cache))
        acc: dict[str, list[float]] = {g: [] for g in GROUPS}
        for first in range(0, n, UNIT_EPISODES):
            # the board's whole unit: its images come from the same batches as the board's
            unit = episode_unit(first, len(episodes))
            hits: dict = {}
            score_unit(strategy, scn, data, episodes, unit, cached, embed, MAX_BATCH, None,
                       hits=hits)  # fmt: skip
            for e in (e for e in unit if e < n):
                right = hits[e]
                typ = np.array([flags[i] for q in episodes[e].query for i in q])
                acc["all"].append(100 * float(right.mean()))
                acc["typical"].append(100 * float(right[typ].mean()) if typ.any() else np.nan)
                acc["atypical"].append(100 * float(right[~typ].mean()) if (~typ).any() else np.nan)
                want = rows[sname]["episode_accuracies"][e]
                if abs(acc["all"][-1] - want) > 1e-3:
                    raise SystemExit(
                        f"{sname} episode {e}: re-scored {acc['all'][-1]:.4f}, board {want}"
                    )
        if cached is not None and cached.generated:
            raise SystemExit(f"{sname}: {cached.generated} images were not in the cache")
        per[sname] = acc
        print(f"{sname}: re-scored {n} episodes, equal to the board", flush=True)

    def contrast(vals, base):
        v, b = np.array(vals), np.array(base)
        ok = ~(np.isnan(v) | np.isnan(b))
        d, ci = paired_diff_ci95(list(v[ok]), list(b[ok]))
        return {"delta": round(d, 2), "ci95": round(ci, 2), "excludes_0": bool(abs(d) > ci)}

    def summary(vals, base):
        v, b = np.array(vals), np.array(base)
        ok = ~(np.isnan(v) | np.isnan(b))
        m, ci = mean_ci95(list(v[ok] / 100))
        d, dci = paired_diff_ci95(list(v[ok]), list(b[ok]))
        return {
            "mean": round(100 * m, 2),
            "ci95": round(100 * ci, 2),
            "episodes": int(ok.sum()),
            "delta_none": round(d, 2),
            "delta_none_ci95": round(dci, 2),
        }

    out = {
        "scenario": scn.to_dict(),
        "episodes": n,
        "typical_query_share": round(
            float(np.mean([flags[i] for ep in episodes[:n] for q in ep.query for i in q])), 3
        ),
        "strategies": {s: {g: summary(per[s][g], per["none"][g]) for g in GROUPS} for s in per},
        # between strategies, per group: row − column on the same episodes
        "contrasts": {
            f"{x} - {y}": {g: contrast(per[x][g], per[y][g]) for g in GROUPS}
            for x, y in CONTRASTS
            if x in per and y in per
        },
        "environment": environment(),
    }
    atomic_write_text(a.out, json.dumps(out, indent=1, sort_keys=True) + "\n")
    for s, g in out["strategies"].items():
        print(
            f"{s:>11}: typical {g['typical']['mean']:.2f} (Δ {g['typical']['delta_none']:+.2f} ± "
            f"{g['typical']['delta_none_ci95']:.2f}), atypical {g['atypical']['mean']:.2f} "
            f"(Δ {g['atypical']['delta_none']:+.2f} ± {g['atypical']['delta_none_ci95']:.2f})"
        )


if __name__ == "__main__":
    main()
