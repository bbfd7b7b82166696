"""Network rows per generated image, from the schedule plan alone: what GeNIe, GeNIe-Ada and
its lite/fast variants cost on a model at its sampler settings, before any weight is loaded.

A row is one image through the UNet/transformer once (a guided step is two rows); on a
compute-bound GPU the generation time is proportional to it. Counts read the same plan the
loop runs (:mod:`genie_plugin.core.plan`), so they cannot drift from what is run.
"""

from __future__ import annotations

from dataclasses import replace

from genie_plugin.core.ada import ADA_RATIOS

GENIE_RATIO = 0.8
LITE_ITEM_STEPS = 5  # genie_ada_lite's probe_item_steps
FAST_STEPS = 10  # genie_ada_fast's probe_steps


def _rows(view, ratios) -> int:
    from genie_plugin.diffusion.schedulers import schedule_plan

    return schedule_plan(view).unet_rows(list(ratios))


def cost_rows(view, grid=ADA_RATIOS) -> dict:
    """Rows per output: GeNIe at r 0.8; GeNIe-Ada (every grid candidate at full steps, the
    chosen one among them); lite and fast (candidates on the probe settings, then the output at
    r* with full steps, r* unknown: the grid's mean); and how many distinct start levels the
    grid's candidates begin from."""
    from genie_plugin.diffusion.sampler import start_level

    final = sum(_rows(view, [r]) for r in grid) / len(grid)
    lite = view.with_sampler(max_item_steps=LITE_ITEM_STEPS)
    fast = view.with_sampler(steps=min(FAST_STEPS, view.sampler.steps))
    levels = sorted({start_level(view, r) for r in grid})
    return {
        "genie": _rows(view, [GENIE_RATIO]),
        "genie_ada": _rows(view, grid),
        "genie_ada_lite": round(_rows(lite, grid) + final, 1),
        "genie_ada_fast": round(_rows(fast, grid) + final, 1),
        "text2image": _rows(view, [1.0]),
        "distinct_start_levels": len(levels),
        "start_levels": levels,
    }


class PlanView:
    """A model as the schedule plan reads it, for a family's published scheduler config and
    recommended sampler (no weights): cost tables for models not on this machine."""

    def __init__(self, family: str, scheduler_config: dict, sampler, *, resolution: int,
                 latent_channels: int = 4, vae_scale_factor: int = 8, patch_size: int = 1,
                 guidance_embedded: bool = False, guidance_embeds: bool = False) -> None:  # fmt: skip
        from types import SimpleNamespace

        self.family, self.scheduler_config, self.sampler = family, scheduler_config, sampler
        self.resolution, self.vae_scale_factor = resolution, vae_scale_factor
        self.guidance_embedded = guidance_embedded
        self.device = "cpu"
        ch = latent_channels * (4 if family == "flux" else 1)
        # what the family's recommended_sampler and schedule read of the network's config
        self.unet = SimpleNamespace(config=SimpleNamespace(in_channels=ch, patch_size=patch_size,
                                                           guidance_embeds=guidance_embeds))  # fmt: skip

    def with_sampler(self, **changes) -> PlanView:
        out = object.__new__(PlanView)
        out.__dict__.update(self.__dict__)
        out.sampler = replace(self.sampler, **changes)
        return out


def unet_row_flops(model) -> int:
    """FLOPs of one denoiser row (one image through one step, batch 1, the model's own latent
    size), counted by torch's FlopCounterMode once per model: the unit that turns a fit's
    FLOPs into UNet rows, so a peer's fitting sits in the same cost column as generation."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    stats = model.helpers.stats
    if "unet_row_flops" not in stats:
        fam = model.adapter
        with torch.no_grad():
            x, _t, cond = fam.example_inputs(model, 1, torch.Generator().manual_seed(0))
            with FlopCounterMode(display=False) as fc:
                fam.forward(model.unet, x, torch.tensor([500.0], device=model.device), cond)
        stats["unet_row_flops"] = int(fc.get_total_flops())
    return stats["unet_row_flops"]
