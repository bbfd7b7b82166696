"""The denoising loop: one batch of items stepped through its schedule plan, one network call
per clock tick for every active item, for any model family.

Every join group owns a copy of the scheduler so multistep solvers keep per-item history
exactly as if the item ran alone; r = 1 starts from pure noise (the text-to-image pipeline's
start, not img2img's ``strength=1`` which leaks ~7% of the source). Noise is drawn per item on
the CPU from the item's own generator, which a stochastic step (LCM, ancestral samplers) goes
on drawing from, as diffusers' pipelines do with a list of generators. What the network reads
besides latents and timesteps is a :class:`~.conditioning.Conditioning` record the family made;
the loop only concatenates its rows.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch

from genie_plugin.diffusion.conditioning import Conditioning
from genie_plugin.diffusion.schedulers import (
    base_scheduler,
    make_scheduler,
    schedule_plan,
    set_custom_timesteps,
)
from genie_plugin.seeding import cpu_generator

#: One network call: (latent rows, timestep per row, conditioning rows) -> model prediction.
Denoiser = Callable[[torch.Tensor, torch.Tensor, Conditioning], torch.Tensor]


def torch_denoiser(model) -> Denoiser:
    """The eager network call of ``model``'s family."""
    net, forward = model.unet, model.adapter.forward

    def call(sample: torch.Tensor, t: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        return forward(net, sample, t, cond)

    return call


def _noise(rng: torch.Generator | int, shape: tuple[int, ...], device, dtype) -> torch.Tensor:
    # shape (1, C, h, w): same draw as diffusers' randn_tensor with one generator per item
    # (an int: a fresh generator of that seed).
    rng = cpu_generator(rng) if isinstance(rng, int) else rng
    return torch.randn(shape, generator=rng, dtype=torch.float32).to(device, dtype)


def denoise(
    model,
    items: Sequence,
    *,
    source_latents: dict[int, torch.Tensor],
    text: dict[str, Conditioning],
    uncond: Conditioning,
    denoiser: Denoiser,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Run the scheduler loop for one batch of items; return their final latents (in order)."""
    # a ``with`` block, not ``@torch.no_grad()``: mutmut skips decorated functions (issue 30)
    with torch.no_grad():
        return _denoise(model, items, source_latents=source_latents, text=text, uncond=uncond,
                        denoiser=denoiser, progress=progress)  # fmt: skip


def _denoise(model, items, *, source_latents, text, uncond, denoiser, progress) -> torch.Tensor:
    cfg = model.sampler
    fam = model.adapter
    base = base_scheduler(model)
    plan = schedule_plan(model, base)
    groups = plan.groups([it.ratio for it in items])
    channels, h, w = fam.latent_shape(model)

    # Per group: its scheduler, its timesteps (tensors, as the scheduler holds them), latents.
    scheds: dict[int, Any] = {}
    latents: dict[int, torch.Tensor] = {}
    step_rngs: dict[int, list[torch.Generator]] = {}
    timeline: dict[int, torch.Tensor] = {}
    for g in groups:
        if not g.thinned:
            sched = copy.deepcopy(base)
            if hasattr(sched, "set_begin_index"):
                sched.set_begin_index(g.start)
            tail = base.timesteps[g.start :]
        else:
            sched = make_scheduler(cfg.scheduler, model.scheduler_config, cfg.timestep_spacing)
            set_custom_timesteps(sched, g.timesteps, model.device)
            if hasattr(sched, "set_begin_index"):
                sched.set_begin_index(0)
            tail = sched.timesteps
        lat, rngs = [], []
        for i in g.items:
            it = items[i]
            rngs.append(cpu_generator(it.seed))
            noise = _noise(rngs[-1], (1, channels, h, w), model.device, model.dtype)
            if it.ratio >= 1.0:
                lat.append(noise * getattr(sched, "init_noise_sigma", 1.0))
            else:
                lat.append(fam.start_latent(sched, source_latents[i], noise, tail[:1]))
        scheds[g.start], timeline[g.start], latents[g.start] = sched, tail, torch.cat(lat)
        # each item's own generator, continued: a stochastic step draws per item (diffusers'
        # randn_tensor with a generator list); deterministic ones ignore it
        step_rngs[g.start] = rngs

    n_clock = max(g.join + len(g.timesteps) for g in groups)
    text_rows = {g.start: Conditioning.cat([text[items[i].prompt] for i in g.items])
                 for g in groups}  # fmt: skip
    for clock in range(min(g.join for g in groups), n_clock):
        active = [g for g in groups if g.join <= clock]
        t_now = {g.start: timeline[g.start][clock - g.join] for g in active}
        guided = [g for g in active if plan.guided(g.timesteps[clock - g.join])]
        # scale_model_input is elementwise and depends on the group's step only.
        x = {
            g.start: _scale_input(scheds[g.start], latents[g.start], t_now[g.start]) for g in active
        }
        rows = [*guided, *active]  # unconditional rows of guided groups, then all conditional
        x_in = torch.cat([x[g.start] for g in rows])
        text_in = Conditioning.cat(
            [uncond.expand(len(x[g.start])) for g in guided] + [text_rows[g.start] for g in active]
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


def _scale_input(sched, latents, t):
    """The scheduler's input scaling (elementwise, per step); flow schedulers have none."""
    scale = getattr(sched, "scale_model_input", None)
    return latents if scale is None else scale(latents, t)
