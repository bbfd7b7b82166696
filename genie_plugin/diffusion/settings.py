"""Sampler settings: everything besides the weights that decides a generated image's pixels."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from genie_plugin.core.schedule import shift_timesteps
from genie_plugin.diffusion.schedulers import SPACINGS, check_scheduler_name
from genie_plugin.errors import ConfigError, check_known_keys, check_optional_int


@dataclass(frozen=True, kw_only=True)
class SamplerConfig:
    """Generation settings; defaults are the reference's (reference.md: DPM-Solver++, 50, 7.5)."""

    scheduler: str = "dpm++"
    steps: int = 50
    guidance_scale: float = 7.5
    resolution: int | None = None  # None: the model's native size (512 for SD 1.5)
    # < 1 for models with small latents: a given r then destroys less of the source
    # (core.schedule.shift_timesteps); 1 = diffusers' own linspace timesteps.
    timestep_shift: float = 1.0
    # Guidance floor: classifier-free guidance only at timesteps >= guidance_t_min ×
    # num_train_timesteps, the conditional prediction alone below (and half the UNet rows).
    # The lower end of Kynkäänniemi et al.'s guidance interval (NeurIPS 2024); the upper end is
    # always the start (guidance at every high-noise step). 0 = guidance at every step.
    guidance_t_min: float = 0.0
    # At most this many solver steps per item, on an evenly thinned subset of the timesteps it
    # would run (core.schedule.thinned_indices): same start noise, coarser solve. None = all.
    # GeNIe-Ada's probe uses it to score candidates cheaply.
    max_item_steps: int | None = None
    # The DDPM schedulers' timestep spacing: "linspace" (the reference), "trailing" (what
    # SD-Turbo and SDXL-Turbo are trained on), "leading".
    timestep_spacing: str = "linspace"
    # What r is: "strength" (diffusers' img2img: r picks a start step) or "level" (r is the
    # start noise level itself: t = T·r, σ = r on flow models; continuous, so a 4-step model's
    # r 0.5…0.9 start from five levels instead of two steps).
    ratio_meaning: str = "strength"

    def __post_init__(self) -> None:
        check_scheduler_name(self.scheduler)
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ConfigError(f"steps must be a positive integer, got {self.steps!r}")
        if not 0 <= self.guidance_scale < float("inf"):  # NaN fails too
            raise ConfigError(f"guidance_scale must be a number >= 0, got {self.guidance_scale}")
        if self.resolution is not None and (self.resolution < 8 or self.resolution % 8):
            raise ConfigError(f"resolution must be a multiple of 8, got {self.resolution}")
        shift_timesteps([0], self.timestep_shift)  # validates
        if not 0.0 <= self.guidance_t_min < 1.0:
            raise ConfigError(
                f"guidance_t_min must be in [0, 1) (a fraction of the training timesteps), "
                f"got {self.guidance_t_min}"
            )
        if self.timestep_shift != 1.0 and self.scheduler == "ddim":
            raise ConfigError(
                "timestep_shift needs a scheduler that takes custom timesteps: use dpm++ or euler"
            )
        check_optional_int(self.max_item_steps, "max_item_steps", minimum=1)
        if self.timestep_spacing not in SPACINGS:
            raise ConfigError(
                f"timestep_spacing must be one of {', '.join(SPACINGS)}, got "
                f"{self.timestep_spacing!r}"
            )
        if self.ratio_meaning not in ("strength", "level"):
            raise ConfigError(
                f"ratio_meaning must be 'strength' (diffusers' img2img) or 'level' (r is the start "
                f"noise level), got {self.ratio_meaning!r}"
            )
        if self.ratio_meaning == "level" and self.scheduler == "ddim":
            raise ConfigError(
                "ratio_meaning 'level' needs a scheduler that takes custom timesteps: use dpm++, "
                "euler, lcm or tcd"
            )
        if self.max_item_steps is not None and self.scheduler == "ddim":
            raise ConfigError(
                "max_item_steps needs a scheduler that takes custom timesteps: use dpm++ or euler"
            )

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["timestep_shift"] == 1.0:
            del d["timestep_shift"]  # keeps cache keys of unshifted runs as they were
        if d["guidance_t_min"] == 0.0:
            del d["guidance_t_min"]  # likewise
        if d["max_item_steps"] is None or d["max_item_steps"] >= d["steps"]:
            del d["max_item_steps"]  # likewise; a cap at or above the steps changes nothing
        if d["timestep_spacing"] == "linspace":
            del d["timestep_spacing"]  # likewise
        if d["ratio_meaning"] == "strength":
            del d["ratio_meaning"]  # likewise
        return dict(sorted(d.items()))

    @classmethod
    def from_dict(cls, d: dict) -> SamplerConfig:
        check_known_keys(cls, d, "sampler")
        return cls(**d)
