import pytest

from genie_plugin.core.schedule import (
    first_step_at_or_below,
    num_denoising_steps,
    start_index,
    validate_ratio,
)
from genie_plugin.diffusion.schedulers import make_scheduler
from genie_plugin.errors import ConfigError

SD15_SCHEDULER = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "steps_offset": 1,
}
# reference.md: ≈ 50·r steps; r = 0.8 -> 40 of 50.
REFERENCE_TABLE = {0.3: 15, 0.5: 25, 0.6: 30, 0.7: 35, 0.8: 40, 0.9: 45, 1.0: 50}


@pytest.mark.parametrize("name", ["dpm++", "ddim", "euler"])
def test_ratio_to_steps_matches_reference_table(name):
    sched = make_scheduler(name, SD15_SCHEDULER)
    sched.set_timesteps(50)
    ts = [float(t) for t in sched.timesteps]
    assert len(ts) == 50
    for r, steps in REFERENCE_TABLE.items():
        assert num_denoising_steps(50, r) == steps
        # the paper's phrasing: join at the first step with t <= 1000·r
        assert len(ts) - first_step_at_or_below(ts, r) == steps, (name, r)
        assert start_index(50, r) == 50 - steps


def test_ratio_validation():
    for bad in (0, -0.1, 1.01, float("nan"), "x", None):
        with pytest.raises(ConfigError):
            validate_ratio(bad)
    assert validate_ratio(1) == 1.0
    with pytest.raises(ConfigError, match="no denoising step"):
        num_denoising_steps(50, 0.01)


def _linspace(steps):
    sched = make_scheduler("dpm++", SD15_SCHEDULER)
    sched.set_timesteps(steps)
    return [int(t) for t in sched.timesteps]


@pytest.mark.parametrize("steps", [10, 50, 200])
def test_timestep_shift_keeps_endpoints_and_order(steps):
    from genie_plugin.core.schedule import shift_timesteps

    base = _linspace(steps)
    assert shift_timesteps(base, 1.0) == base
    prev = base
    for s in (0.5, 0.2, 1 / 15, 0.01):
        ts = shift_timesteps(base, s)
        assert len(ts) == len(base)
        assert ts[0] == base[0]  # r = 1 still starts from the model's top timestep
        assert all(
            a > b for a, b in zip(ts, ts[1:], strict=False)
        )  # strictly decreasing: solvers divide by gaps
        assert ts[-1] >= 0
        # a smaller shift never puts a step at more noise
        assert all(a <= b for a, b in zip(ts, prev, strict=False))
        prev = ts
    # s > 1 goes the other way (more noise at a given r, as SD3 does for larger images)
    assert all(a >= b for a, b in zip(shift_timesteps(base, 3.0), base, strict=False))


def test_timestep_shift_matches_sd3_formula_midway():
    from genie_plugin.core.schedule import shift_timesteps

    # u = 1/3, s = 0.2: u' = (0.2/3) / (1 - 0.8/3) = 1/11 -> t = 999/11 ≈ 91
    assert shift_timesteps([999, 333, 0], 0.2) == [999, 91, 0]
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ConfigError):
            shift_timesteps([999, 0], bad)


@pytest.mark.parametrize("n", [1, 2, 5, 25, 45])
@pytest.mark.parametrize("k", [1, 2, 3, 5, 8])
def test_thinned_indices_keep_the_start_and_k_evenly_spaced_steps(n, k):
    from genie_plugin.core.schedule import thinned_indices

    idx = thinned_indices(n, k)
    assert idx[0] == 0  # the item's start noise level is never dropped
    assert len(idx) == min(n, k)
    assert idx == sorted(set(idx)) and idx[-1] < n
    gaps = [b - a for a, b in zip(idx, [*idx[1:], n], strict=True)]
    assert max(gaps) - min(gaps) <= 1  # even spacing, the last step running to the end


def test_thinned_indices_none_or_large_k_keep_everything_and_bad_k_raises():
    from genie_plugin.core.schedule import thinned_indices

    assert thinned_indices(7, None) == thinned_indices(7, 7) == thinned_indices(7, 9) == [*range(7)]
    with pytest.raises(ConfigError, match="max_item_steps"):
        thinned_indices(7, 0)


def test_first_step_at_or_below_uses_the_bound_1000r():
    assert first_step_at_or_below([900, 800.5, 800, 700], 0.8) == 2
    assert first_step_at_or_below([900, 800.5], 0.8) == 2  # none at or below: after the end
    assert first_step_at_or_below([90, 80, 70], 0.8, num_train_timesteps=100) == 1


def test_schedule_messages_say_what_to_change():
    """Exact messages: each names the value and the fix (a user reads these, not a traceback)."""
    from genie_plugin.core.schedule import shift_timesteps, thinned_indices

    def msg(fn, *a, **kw):
        with pytest.raises(ConfigError) as exc:
            fn(*a, **kw)
        return str(exc.value)

    assert msg(validate_ratio, "x") == "ratio must be a number in (0, 1], got 'x'"
    assert msg(validate_ratio, 1.5, name="--ratio") == (
        "--ratio must be in (0, 1] (1 = pure noise, Text2Image), got 1.5"
    )
    assert msg(validate_ratio, 0) == "ratio must be in (0, 1] (1 = pure noise, Text2Image), got 0"
    assert msg(num_denoising_steps, 0, 0.5) == "steps must be >= 1, got 0"
    assert msg(num_denoising_steps, 10, 0.05) == (
        "ratio 0.05 with 10 steps runs no denoising step; use ratio >= 0.1 or more steps"
    )
    assert msg(num_denoising_steps, 8, 0.1).endswith("use ratio >= 0.125 or more steps")
    assert msg(shift_timesteps, [999, 0], float("inf")) == (
        "timestep_shift must be a positive number, got inf"
    )
    assert (
        msg(shift_timesteps, list(range(11)), 0.5, 10) == "11 steps exceed the model's 10 timesteps"
    )
    assert msg(thinned_indices, 0, 2) == "an item needs at least one timestep, got 0"
    # s > 1 crowds the top: 10 steps of a 10-timestep model then cannot stay distinct
    assert msg(shift_timesteps, list(range(9, -1, -1)), 100.0, 10) == (
        "cannot fit 10 distinct timesteps below 10"
    )


def test_one_step_and_the_full_timestep_range_are_valid():
    from genie_plugin.core.schedule import shift_timesteps

    assert num_denoising_steps(1, 1.0) == 1 and start_index(1, 1.0) == 0
    every = list(range(9, -1, -1))  # all 10 training timesteps of a 10-step model
    assert shift_timesteps(every, 0.5, 10) == every  # crowded to one apart: still fits
    # s = 1 returns the list as given, even one the warp would have spread
    assert shift_timesteps([5, 5, 5], 1.0) == [5, 5, 5]
