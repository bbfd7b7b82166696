"""Noise ratio r -> which scheduler steps run.

GeNIe noises the source latent to timestep ~1000·r and runs only the remaining steps
(paper §3; reference code: r = 0.8 -> 40 of 50 DPM-Solver++ steps). We use diffusers'
img2img rule (``strength = r``) so a uniform-r batch is step-for-step identical to
``StableDiffusionImg2ImgPipeline``; ``first_step_at_or_below`` is the paper's phrasing of the
same rule and the tests check both agree on the reference grid.
"""

from __future__ import annotations

from collections.abc import Sequence

from genie_plugin.errors import ConfigError


def validate_ratio(ratio: float, *, name: str = "ratio") -> float:
    """Return ``ratio`` as float if it lies in (0, 1], else raise a ConfigError."""
    try:
        r = float(ratio)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number in (0, 1], got {ratio!r}") from None
    if not 0.0 < r <= 1.0 or r != r:
        raise ConfigError(f"{name} must be in (0, 1] (1 = pure noise, Text2Image), got {ratio!r}")
    return r


def num_denoising_steps(num_inference_steps: int, ratio: float) -> int:
    """Number of scheduler steps an item with noise ratio ``ratio`` runs (img2img's rule)."""
    r = validate_ratio(ratio)
    if num_inference_steps < 1:
        raise ConfigError(f"steps must be >= 1, got {num_inference_steps}")
    n = min(int(num_inference_steps * r), num_inference_steps)
    if n < 1:
        raise ConfigError(
            f"ratio {r} with {num_inference_steps} steps runs no denoising step; "
            f"use ratio >= {1 / num_inference_steps:.3g} or more steps"
        )
    return n


def start_index(num_inference_steps: int, ratio: float, order: int = 1) -> int:
    """Index into ``scheduler.timesteps`` at which an item with this ratio joins the loop."""
    return (num_inference_steps - num_denoising_steps(num_inference_steps, ratio)) * order


def first_step_at_or_below(
    timesteps: Sequence[float], ratio: float, num_train_timesteps: int = 1000
) -> int:
    """Index of the first timestep with t <= num_train_timesteps·r (the paper's phrasing)."""
    r = validate_ratio(ratio)
    bound = num_train_timesteps * r
    for i, t in enumerate(timesteps):
        if float(t) <= bound:
            return i
    return len(timesteps)
