"""The denoising loop: one batch of items stepped through its schedule plan, one UNet call per
clock tick for every active item.

Every join group owns a copy of the scheduler so multistep solvers keep per-item history
exactly as if the item ran alone; r = 1 starts from pure noise (the text-to-image pipeline's
start, not img2img's ``strength=1`` which leaks ~7% of the source). Noise is drawn per item on
the CPU from the item's own seed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch

from genie_plugin.diffusion.schedulers import base_scheduler, make_scheduler, schedule_plan
from genie_plugin.seeding import cpu_generator

#: One UNet call: (latent rows, timestep per row, text embedding per row) -> noise prediction.
Denoiser = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def torch_denoiser(unet) -> Denoiser:
    def call(sample: torch.Tensor, t: torch.Tensor, text_rows: torch.Tensor) -> torch.Tensor:
        return unet(sample, t, encoder_hidden_states=text_rows, return_dict=False)[0]

    return call


def _noise(seed: int, shape: tuple[int, ...], device, dtype) -> torch.Tensor:
    # shape (1, C, h, w): same draw as diffusers' randn_tensor with a single generator.
    return torch.randn(shape, generator=cpu_generator(seed), dtype=torch.float32).to(device, dtype)


@torch.no_grad()
def denoise(
    model,
    items: Sequence,
    *,
    source_latents: dict[int, torch.Tensor],
    text: dict[str, torch.Tensor],
    uncond: torch.Tensor,
    denoiser: Denoiser,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Run the scheduler loop for one batch of items; return their final latents (in order)."""
    cfg = model.sampler
    base = base_scheduler(model)
    plan = schedule_plan(model, base)
    groups = plan.groups([it.ratio for it in items])
    channels = model.unet.config.in_channels
    h = w = model.resolution // model.vae_scale_factor

    # Per group: its scheduler, its timesteps (tensors, as the scheduler holds them), latents.
    scheds: dict[int, Any] = {}
    latents: dict[int, torch.Tensor] = {}
    step_rngs: dict[int, torch.Generator] = {}
    timeline: dict[int, torch.Tensor] = {}
    for g in groups:
        if not g.thinned:
            sched = copy.deepcopy(base)
            if hasattr(sched, "set_begin_index"):
                sched.set_begin_index(g.start)
            tail = base.timesteps[g.start :]
        else:
            sched = make_scheduler(cfg.scheduler, model.scheduler_config)
            sched.set_timesteps(timesteps=[int(t) for t in g.timesteps], device=model.device)
            if hasattr(sched, "set_begin_index"):
                sched.set_begin_index(0)
            tail = sched.timesteps
        lat = []
        for i in g.items:
            it = items[i]
            noise = _noise(it.seed, (1, channels, h, w), model.device, model.dtype)
            if it.ratio >= 1.0:
                lat.append(noise * sched.init_noise_sigma)
            else:
                lat.append(sched.add_noise(source_latents[i], noise, tail[:1]))
        scheds[g.start], timeline[g.start], latents[g.start] = sched, tail, torch.cat(lat)
        # Deterministic schedulers ignore it; it keeps diffusers off the global RNG.
        step_rngs[g.start] = cpu_generator(items[g.items[0]].seed ^ 0x5EED)

    n_clock = max(g.join + len(g.timesteps) for g in groups)
    text_rows = {g.start: torch.cat([text[items[i].prompt] for i in g.items]) for g in groups}
    for clock in range(min(g.join for g in groups), n_clock):
        active = [g for g in groups if g.join <= clock]
        t_now = {g.start: timeline[g.start][clock - g.join] for g in active}
        guided = [g for g in active if plan.guided(g.timesteps[clock - g.join])]
        # scale_model_input is elementwise and depends on the group's step only.
        x = {
            g.start: scheds[g.start].scale_model_input(latents[g.start], t_now[g.start])
            for g in active
        }
        rows = [*guided, *active]  # unconditional rows of guided groups, then all conditional
        x_in = torch.cat([x[g.start] for g in rows])
        text_in = torch.cat(
            [uncond.expand(len(x[g.start]), -1, -1) for g in guided]
            + [text_rows[g.start] for g in active]
        )
        t_in = torch.cat([t_now[g.start].reshape(1).expand(len(x[g.start])) for g in rows])
        eps_rows = denoiser(x_in, t_in.to(model.device), text_in)
        n_uncond = sum(len(x[g.start]) for g in guided)
        eps_uncond, eps_cond = eps_rows[:n_uncond], eps_rows[n_uncond:]
        at_uncond = at_cond = 0
        guided_starts = {g.start for g in guided}
        for g in active:
            n = len(latents[g.start])
            eps = eps_cond[at_cond : at_cond + n]
            at_cond += n
            if g.start in guided_starts:
                u = eps_uncond[at_uncond : at_uncond + n]
                at_uncond += n
                eps = u + cfg.guidance_scale * (eps - u)
            latents[g.start] = scheds[g.start].step(
                eps,
                t_now[g.start],
                latents[g.start],
                generator=step_rngs[g.start],
                return_dict=False,
            )[0]
        if progress is not None:
            progress(at_cond)
    out = torch.empty((len(items), channels, h, w), device=model.device, dtype=model.dtype)
    for g in groups:
        out[list(g.items)] = latents[g.start].to(out.dtype)
    return out
