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
