"""Cost per family, from the schedule plan: network rows per output for GeNIe, GeNIe-Ada and
its lite/fast variants at each family's recommended sampler, with r as diffusers' strength and
as the start noise level, and how many distinct start levels GeNIe-Ada's five candidates get.

No weights: each family is described by its published scheduler config (SD 1.5's, SDXL's,
SD3's flow shift 3, Flux's dynamic shift) and the sampler settings its model card recommends.
Writes JSON and the markdown table of docs/models.md::

    python benchmarks/perf/family_costs.py --out benchmarks/results/family_costs_<date>.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

DDPM = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
        "num_train_timesteps": 1000, "prediction_type": "epsilon"}  # fmt: skip
FLOW_SD3 = {"num_train_timesteps": 1000, "shift": 3.0}
FLOW_FLUX = {"num_train_timesteps": 1000, "shift": 3.0, "use_dynamic_shifting": True,
             "base_image_seq_len": 256, "max_image_seq_len": 4096, "base_shift": 0.5,
             "max_shift": 1.15}  # fmt: skip

#: model -> (family, scheduler config, recommended sampler, view options)
MODELS = {
    "SD 1.5 (reference)": ("sd", DDPM, {"scheduler": "dpm++", "steps": 50, "guidance_scale": 7.5},
                           {"resolution": 512}),
    "SDXL base": ("sdxl", DDPM, {"scheduler": "dpm++", "steps": 50, "guidance_scale": 7.5},
                  {"resolution": 1024}),
    "LCM (SD 1.5 / SDXL)": ("sd", DDPM, {"scheduler": "lcm", "steps": 4, "guidance_scale": 8.0},
                            {"resolution": 512, "guidance_embedded": True}),
    "SD-Turbo / SDXL-Turbo": ("sd", DDPM, {"scheduler": "euler", "steps": 4,
                                           "guidance_scale": 0.0,
                                           "timestep_spacing": "trailing"},
                              {"resolution": 512}),
    "SD 3.5": ("sd3", FLOW_SD3, {"scheduler": "flow-euler", "steps": 28, "guidance_scale": 7.0},
               {"resolution": 1024, "latent_channels": 16, "patch_size": 2}),
    "Flux.1 schnell": ("flux", FLOW_FLUX, {"scheduler": "flow-euler", "steps": 4,
                                           "guidance_scale": 0.0},
                       {"resolution": 1024, "latent_channels": 16}),
    "Flux.1 dev": ("flux", FLOW_FLUX, {"scheduler": "flow-euler", "steps": 28,
                                       "guidance_scale": 3.5},
                   {"resolution": 1024, "latent_channels": 16}),
}  # fmt: skip


def table() -> list[dict]:
    from genie_plugin.diffusion.costs import PlanView, cost_rows
    from genie_plugin.diffusion.settings import SamplerConfig

    rows = []
    for name, (fam, sched, sampler, opts) in MODELS.items():
        for meaning in ("strength", "level"):
            view = PlanView(fam, sched, SamplerConfig(**sampler, ratio_meaning=meaning), **opts)
            rows.append({"model": name, "family": fam, "sampler": sampler,
                         "ratio_meaning": meaning, **cost_rows(view)})  # fmt: skip
    return rows


def markdown(rows: list[dict]) -> str:
    head = (
        "| model | steps | r means | GeNIe | GeNIe-Ada | lite | fast | Ada / GeNIe "
        "| distinct candidate levels |\n|---|---|---|---|---|---|---|---|---|\n"
    )
    body = "".join(
        f"| {r['model']} | {r['sampler']['steps']} | {r['ratio_meaning']} | {r['genie']} "
        f"| {r['genie_ada']} | {r['genie_ada_lite']} | {r['genie_ada_fast']} "
        f"| {r['genie_ada'] / r['genie']:.1f}× | {r['distinct_start_levels']} of 5 |\n"
        for r in rows
    )
    return head + body


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    rows = table()
    from importlib.metadata import version

    out = {"rows": rows, "markdown": markdown(rows),
           "environment": {"diffusers": version("diffusers"),
                           "genie-fewshot": version("genie-fewshot")}}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(out["markdown"])


if __name__ == "__main__":
    main()
