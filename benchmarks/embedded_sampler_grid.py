"""GeNIe behaviour of the embedded model over a grid of (time shift, CFG): the evidence behind
its recommended sampler settings (``model/genie_sampler.json``).

    python benchmarks/embedded_sampler_grid.py --shifts 1,0.4,0.3,0.2,0.1,0.0667 --cfgs 2,3,5,7.5 \\
        --pairs 40 --out benchmarks/results/embedded_sampler_grid.json

Per setting: labelled-B rate at r = 0.8, background distance to the source vs to a Text2Image
output of B, GeNIe-Ada agreement with the oracle's flip and both histograms
(:func:`genie_plugin.embedded.evaluate.genie_pairs`, sources from the held-out few-shot pool).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--shifts", default="1,0.3,0.2,0.0667")
    ap.add_argument("--cfgs", default="3,5,7.5")
    ap.add_argument(
        "--t-mins", default="0", help="guidance intervals: CFG only at t >= this fraction of T"
    )
    ap.add_argument(
        "--settings",
        default=None,
        help="explicit shift:cfg:t_min triples, comma-separated (instead of the full grid)",
    )
    ap.add_argument("--pairs", type=int, default=40)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--device", default=None)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()

    from genie_plugin.bench.env import environment
    from genie_plugin.diffusion import load_generator
    from genie_plugin.embedded.assets import Oracle, load_embedded_backbone
    from genie_plugin.embedded.evaluate import fewshot_sources, genie_pairs
    from genie_plugin.io import atomic_write_text

    base = load_generator("embedded", device=a.device)
    oracle, embed = Oracle(device=a.device), load_embedded_backbone(device=a.device)
    sources = fewshot_sources(20, seed=0)
    rows = []
    if a.settings:
        grid = [tuple(float(v) for v in x.split(":")) for x in a.settings.split(",")]
    else:
        grid = [
            (float(sh), float(c), float(tm))
            for sh in a.shifts.split(",")
            for c in a.cfgs.split(",")
            for tm in a.t_mins.split(",")
        ]
    for shift, cfg, t_min in grid:
        gen = base.with_sampler(
            steps=a.steps, guidance_scale=cfg, timestep_shift=shift, guidance_t_min=t_min
        )
        t0 = time.time()
        g = genie_pairs(gen, oracle, embed, sources, a.pairs, max_batch=256)
        keep = (
            "labelled_target_at_default",
            "bg_dist_to_source_at_default",
            "bg_dist_to_text2image_at_default",
            "ada_within_one_step_of_flip",
            "constant_r_within_one_step_of_flip",
            "ada_r_star_hist",
            "oracle_flip_hist",
            "frac_labelled_target",
        )
        row = {
            "timestep_shift": shift,
            "guidance": cfg,
            "guidance_t_min": t_min,
            **{k: g[k] for k in keep},
        }
        row["best_other_grid"] = g["ada_other_grids"][0] if g["ada_other_grids"] else None
        row["seconds"] = round(time.time() - t0, 1)
        rows.append(row)
        print(json.dumps({k: row[k] for k in list(row)[:8]}), flush=True)
    out = {
        "pairs": a.pairs,
        "steps": a.steps,
        "oracle": oracle.info,
        "rows": rows,
        "environment": environment(),
    }
    if a.out:
        atomic_write_text(a.out, json.dumps(out, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
