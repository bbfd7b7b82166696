"""Scheduler choices, built from the model's own scheduler config with diffusers classes.

The reference uses DPM-Solver++ (order 2) with ``timestep_spacing="linspace"``; DDIM and Euler use
the same spacing so the r -> steps table is the same for all three.
"""

from __future__ import annotations

from typing import Any

from genie_plugin.diffusion import families
from genie_plugin.errors import UnknownNameError

SCHEDULERS: dict[str, str] = {
    "dpm++": "DPM-Solver++ multistep, order 2 (reference)",
    "ddim": "DDIM, eta 0",
    "euler": "Euler discrete",
    "lcm": "latent consistency (LCM, LCM-LoRA: few steps, fresh noise per step)",
    "tcd": "trajectory consistency (TCD-LoRA: few steps, gamma 0.3)",
    "flow-euler": "flow-matching Euler (SD3, Flux: the model's own shift)",
}
#: timestep spacings of the DDPM-style schedulers (Turbo models are trained on "trailing")
SPACINGS = ("linspace", "leading", "trailing")


def check_scheduler_name(name: str) -> str:
    if name not in SCHEDULERS:
        raise UnknownNameError(
            f"unknown scheduler {name!r}; choose one of: {', '.join(sorted(SCHEDULERS))}"
        )
    return name


def make_scheduler(name: str, base_config: Any, spacing: str = "linspace"):
    """A fresh diffusers scheduler of kind ``name`` configured from ``base_config``."""
    import diffusers

    check_scheduler_name(name)
    if name == "flow-euler":  # the model's own flow config (shift, dynamic shifting) as is
        return diffusers.FlowMatchEulerDiscreteScheduler.from_config(dict(base_config))
    # The legacy-config fixes diffusers' SD pipelines apply on construction (steps_offset 1,
    # no x0 clipping), so a run matches the pipeline's even on an old config that says otherwise.
    base_config = {**dict(base_config), "steps_offset": 1, "clip_sample": False}
    if name == "dpm++":
        return diffusers.DPMSolverMultistepScheduler.from_config(
            base_config, algorithm_type="dpmsolver++", solver_order=2, timestep_spacing=spacing
        )
    cls = {"ddim": diffusers.DDIMScheduler, "euler": diffusers.EulerDiscreteScheduler,
           "lcm": diffusers.LCMScheduler, "tcd": diffusers.TCDScheduler}[name]  # fmt: skip
    return cls.from_config(base_config, timestep_spacing=spacing)


def set_custom_timesteps(sched, timesteps, device) -> None:
    """Give ``sched`` exactly these timesteps (a thinned tail, a start level). Flow schedulers
    would shift a custom list again, so their σ list is set to the levels themselves."""
    import torch

    if not hasattr(sched, "alphas_cumprod"):  # flow matching: σ = t / T, ending at 0
        n_train = sched.config.num_train_timesteps
        ts = torch.tensor([float(t) for t in timesteps], dtype=torch.float32)
        sched.set_timesteps(len(ts), device=device, **_flow_mu(sched))  # state, step index...
        sched.sigmas = torch.cat([ts / n_train, torch.zeros(1)]).to(device)
        sched.timesteps = ts.to(device)
        return
    sched.set_timesteps(timesteps=[int(t) for t in timesteps], device=device)


def _flow_mu(sched) -> dict:
    return {"mu": 0.0} if sched.config.get("use_dynamic_shifting") else {}


def base_scheduler(model, device=None):
    """The run's scheduler with its full (time-shifted) timestep list set."""
    from genie_plugin.core.schedule import shift_timesteps

    cfg = model.sampler
    base = make_scheduler(cfg.scheduler, model.scheduler_config, cfg.timestep_spacing)
    device = model.device if device is None else device
    base.set_timesteps(cfg.steps, device=device, **families.of(model).schedule_kwargs(model))
    if cfg.timestep_shift != 1.0:
        n_train = base.config.num_train_timesteps
        warped = shift_timesteps(base.timesteps.tolist(), cfg.timestep_shift, n_train)
        base.set_timesteps(timesteps=warped, device=device)
    return base


_PLANS: dict[tuple, tuple] = {}


def schedule_plan(model, base=None):
    """The :class:`~genie_plugin.core.plan.SchedulePlan` of ``model``'s sampler settings.

    Kept per (scheduler config, sampler settings) when no ``base`` is given: building the
    scheduler takes ~12 ms, and keys and UNet-row counts ask for the plan of every batch."""
    if base is None:
        fam = families.of(model)
        k = (id(model.scheduler_config), model.sampler, fam.name, fam.plan_facts(model))
        if k not in _PLANS:
            if len(_PLANS) > 64:
                _PLANS.clear()
            # the config is kept with its plan, so its id is not reused while the entry lives
            plan = _plan_of(model, base_scheduler(model, device="cpu"))
            _PLANS[k] = (model.scheduler_config, plan)
        return _PLANS[k][1]
    return _plan_of(model, base)


def _plan_of(model, base):
    from genie_plugin.core.plan import SchedulePlan

    cfg = model.sampler
    fam = families.of(model)
    guided = fam.guided_rows(model)
    return SchedulePlan(
        timesteps=tuple(base.timesteps.tolist()),
        steps=cfg.steps,
        order=getattr(base, "order", 1),
        max_item_steps=cfg.max_item_steps,
        guidance_floor=cfg.guidance_t_min * base.config.num_train_timesteps if guided else None,
        start_rule="flow" if fam.flow else "sd",
        levels=cfg.ratio_meaning == "level",
        num_train_timesteps=int(base.config.num_train_timesteps),
        continuous=fam.flow,
    )
