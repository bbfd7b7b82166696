"""Scheduler choices, built from the model's own scheduler config with diffusers classes.

The reference uses DPM-Solver++ (order 2) with ``timestep_spacing="linspace"``; DDIM and Euler use
the same spacing so the r -> steps table is the same for all three.
"""

from __future__ import annotations

from typing import Any

from genie_plugin.errors import UnknownNameError

SCHEDULERS: dict[str, str] = {
    "dpm++": "DPM-Solver++ multistep, order 2 (reference)",
    "ddim": "DDIM, eta 0",
    "euler": "Euler discrete",
}


def check_scheduler_name(name: str) -> str:
    if name not in SCHEDULERS:
        raise UnknownNameError(
            f"unknown scheduler {name!r}; choose one of: {', '.join(sorted(SCHEDULERS))}"
        )
    return name


def make_scheduler(name: str, base_config: Any):
    """A fresh diffusers scheduler of kind ``name`` configured from ``base_config``."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler

    check_scheduler_name(name)
    # The legacy-config fixes diffusers' SD pipelines apply on construction (steps_offset 1,
    # no x0 clipping), so a run matches the pipeline's even on an old config that says otherwise.
    base_config = {**dict(base_config), "steps_offset": 1, "clip_sample": False}
    if name == "dpm++":
        return DPMSolverMultistepScheduler.from_config(
            base_config, algorithm_type="dpmsolver++", solver_order=2, timestep_spacing="linspace"
        )
    if name == "ddim":
        return DDIMScheduler.from_config(base_config, timestep_spacing="linspace")
    return EulerDiscreteScheduler.from_config(base_config, timestep_spacing="linspace")


def base_scheduler(model, device=None):
    """The run's scheduler with its full (time-shifted) timestep list set."""
    from genie_plugin.core.schedule import shift_timesteps

    cfg = model.sampler
    base = make_scheduler(cfg.scheduler, model.scheduler_config)
    device = model.device if device is None else device
    base.set_timesteps(cfg.steps, device=device)
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
        k = (id(model.scheduler_config), model.sampler)
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
    guided = cfg.guidance_scale > 1.0
    return SchedulePlan(
        timesteps=tuple(base.timesteps.tolist()),
        steps=cfg.steps,
        order=getattr(base, "order", 1),
        max_item_steps=cfg.max_item_steps,
        guidance_floor=cfg.guidance_t_min * base.config.num_train_timesteps if guided else None,
    )
