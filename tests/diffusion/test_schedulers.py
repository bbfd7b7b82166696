"""Scheduler construction and the schedule plan read from it (issue 19's mutation survivors: the
sampler-vs-pipeline tests hand our scheduler to the pipeline too, so they cannot see it wrong)."""

from types import SimpleNamespace

import pytest
import torch

from genie_plugin.core.plan import SchedulePlan
from genie_plugin.core.schedule import shift_timesteps
from genie_plugin.diffusion.schedulers import (
    base_scheduler,
    check_scheduler_name,
    make_scheduler,
    schedule_plan,
)
from genie_plugin.diffusion.settings import SamplerConfig
from genie_plugin.errors import UnknownNameError

SD15 = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "steps_offset": 1,
    "clip_sample": False,
}
LINSPACE_10 = [999, 899, 799, 699, 599, 500, 400, 300, 200, 100]  # DPM++'s last step goes to 0


def _model(device="cpu", **sampler):
    return SimpleNamespace(
        sampler=SamplerConfig(**sampler), scheduler_config=SD15, device=torch.device(device),
        family="sd", guidance_embedded=False,
    )  # fmt: skip


def test_each_name_builds_the_reference_solver_with_linspace_timesteps():
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler

    dpm = make_scheduler("dpm++", SD15)
    assert type(dpm) is DPMSolverMultistepScheduler
    assert dpm.config.algorithm_type == "dpmsolver++" and dpm.config.solver_order == 2
    ddim = make_scheduler("ddim", SD15)
    assert type(ddim) is DDIMScheduler
    euler = make_scheduler("euler", SD15)
    assert type(euler) is EulerDiscreteScheduler
    for s in (dpm, ddim, euler):
        assert s.config.timestep_spacing == "linspace"
    dpm.set_timesteps(10)
    assert dpm.timesteps.tolist() == LINSPACE_10
    ddim.set_timesteps(10)  # DDIM's default spacing is "leading": [900, 800, ..., 0]
    assert ddim.timesteps.tolist() == [999, 888, 777, 666, 555, 444, 333, 222, 111, 0]


def test_legacy_configs_are_fixed_as_the_sd_pipeline_fixes_them():
    """diffusers' SD pipelines set steps_offset 1 and clip_sample False whatever the config says;
    a run here must match, and the caller's config is left as it was."""
    old = {k: v for k, v in SD15.items() if k != "clip_sample"} | {"steps_offset": 0}
    for cfg in (old, {**SD15, "clip_sample": True}, {k: v for k, v in SD15.items() if k != "steps_offset"}):  # fmt: skip
        before = dict(cfg)
        for name in ("ddim", "dpm++", "euler"):
            assert make_scheduler(name, cfg).config.steps_offset == 1
        assert make_scheduler("ddim", cfg).config.clip_sample is False
        assert cfg == before


def test_unknown_scheduler_lists_the_choices():
    with pytest.raises(UnknownNameError) as exc:
        check_scheduler_name("plms")
    assert (
        str(exc.value)
        == "unknown scheduler 'plms'; choose one of: ddim, dpm++, euler, flow-euler, lcm, tcd"
    )
    assert check_scheduler_name("euler") == "euler"


def test_base_scheduler_applies_the_time_shift_on_the_devices_asked():
    plain = base_scheduler(_model(steps=10))
    assert plain.timesteps.tolist() == LINSPACE_10
    shifted = base_scheduler(_model(steps=10, timestep_shift=0.5))
    assert shifted.timesteps.tolist() == shift_timesteps(LINSPACE_10, 0.5, 1000)
    assert shifted.timesteps.tolist() != LINSPACE_10
    # the model's device unless one is given (the plan reads timesteps on the CPU)
    assert base_scheduler(_model("meta", steps=10)).timesteps.device.type == "meta"
    assert base_scheduler(_model("meta", steps=10), device="cpu").timesteps.device.type == "cpu"
    on = base_scheduler(_model("meta", steps=10, timestep_shift=0.5), device="cpu")
    assert on.timesteps.tolist() == shifted.timesteps.tolist()


def test_schedule_plan_guidance_floor_order_and_timesteps():
    from diffusers import HeunDiscreteScheduler

    p = schedule_plan(_model("meta", steps=10, guidance_scale=7.5, guidance_t_min=0.2))
    assert p.timesteps == tuple(LINSPACE_10) and p.steps == 10 and p.order == 1
    assert p.guidance_floor == pytest.approx(200.0)
    # CFG 1 is the conditional prediction alone: no unconditional row, no floor
    for g in (1.0, 0.5):
        assert schedule_plan(_model(steps=10, guidance_scale=g)).guidance_floor is None
    assert schedule_plan(_model(steps=10, guidance_scale=1.5)).guidance_floor == 0.0
    # a second-order solver's plan carries its order (start indices count solver steps)
    heun = HeunDiscreteScheduler.from_config(SD15)
    heun.set_timesteps(10)
    hp = schedule_plan(_model(steps=10), base=heun)
    assert hp.order == 2 and hp.timesteps == tuple(heun.timesteps.tolist())
    assert hp.start(0.5) == 10 and hp.start(1.0) == 0  # (10 - 5) steps × order 2


def test_plan_thinning_is_about_the_items_own_tail():
    p = SchedulePlan(timesteps=tuple(LINSPACE_10), steps=10, max_item_steps=5)
    assert not p.is_thinned(0.3)  # 3 steps left: fewer than 5, nothing dropped
    assert p.is_thinned(0.8) and len(p.item_timesteps(0.8)) == 5
    assert p.groups([]) == []


def test_noise_keeps_the_cpu_draw_whatever_the_device_dtype_or_default_dtype():
    from genie_plugin.diffusion.loop import _noise

    ref = torch.randn((1, 4, 8, 8), generator=torch.Generator("cpu").manual_seed(3))
    half = _noise(3, (1, 4, 8, 8), torch.device("cpu"), torch.float16)
    assert half.dtype == torch.float16 and torch.equal(half, ref.half())
    assert _noise(3, (1, 4, 8, 8), torch.device("meta"), torch.float32).device.type == "meta"
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:  # drawn in float32 even so: the same ε as everywhere else
        wide = _noise(3, (1, 4, 8, 8), torch.device("cpu"), torch.float64)
    finally:
        torch.set_default_dtype(old)
    assert torch.equal(wide, ref.double())


def test_the_run_settings_override_what_a_models_config_says():
    """A saved scheduler config may carry other settings (SD 1.5's says "leading"): the
    solver the run uses is the reference's whatever the file holds."""
    other = {**SD15, "timestep_spacing": "leading", "algorithm_type": "dpmsolver",
             "solver_order": 3}  # fmt: skip
    dpm = make_scheduler("dpm++", other)
    assert dpm.config.algorithm_type == "dpmsolver++" and dpm.config.solver_order == 2
    for name in ("dpm++", "ddim", "euler"):
        assert make_scheduler(name, other).config.timestep_spacing == "linspace", name


def test_the_time_shift_uses_the_models_own_training_timesteps():
    short = SimpleNamespace(
        sampler=SamplerConfig(steps=10, timestep_shift=0.5),
        scheduler_config={**SD15, "num_train_timesteps": 500},
        device=torch.device("cpu"),
        family="sd",
        guidance_embedded=False,
    )
    plain = make_scheduler("dpm++", short.scheduler_config)
    plain.set_timesteps(10)
    want = shift_timesteps(plain.timesteps.tolist(), 0.5, 500)
    assert base_scheduler(short).timesteps.tolist() == want
    assert want != shift_timesteps(plain.timesteps.tolist(), 0.5, 1000)


@pytest.mark.gpu
def test_shifted_timesteps_live_on_the_models_device():
    """The shifted list is set on the model's device (CPU tests cannot tell: the shift reads
    the list back, which a meta tensor cannot do)."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    s = base_scheduler(_model("cuda", steps=10, timestep_shift=0.5))
    assert s.timesteps.device.type == "cuda"
    assert (
        base_scheduler(_model("cuda", steps=10, timestep_shift=0.5), "cpu").timesteps.device.type
        == "cpu"
    )
