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


def shift_timesteps(
    timesteps: Sequence[float], shift: float, num_train_timesteps: int = 1000
) -> list[int]:
    """Warp a descending timestep list by ``shift`` with the endpoints kept (SD3's time shift).

    With u = t / (T − 1), u' = s·u / (1 + (s − 1)·u): s < 1 spends more of the list at low noise,
    so a given r destroys less of the source. Why: the noise that erases an object's shape depends
    on the latent size (a 64×64-latent SD image keeps its layout at a noise level that wipes an
    8×8 latent), so a small model needs s < 1 for r to destroy about as much of the source.
    s = 1 returns the list unchanged. The result is strictly decreasing integers (solvers divide
    by step gaps), so the low end is spread to one training timestep apart where the warp crowds it.
    """
    s = float(shift)
    if not s > 0 or s != s or s == float("inf"):
        raise ConfigError(f"timestep_shift must be a positive number, got {shift!r}")
    ts = [int(round(float(t))) for t in timesteps]
    if s == 1.0:
        return ts
    last = num_train_timesteps - 1
    if len(ts) > num_train_timesteps:
        raise ConfigError(f"{len(ts)} steps exceed the model's {num_train_timesteps} timesteps")
    warped = []
    for t in ts:
        u = min(max(t / last, 0.0), 1.0)
        warped.append(round(last * s * u / (1.0 + (s - 1.0) * u)))
    out = [0] * len(warped)
    nxt = -1
    for i in range(len(warped) - 1, -1, -1):
        nxt = max(warped[i], nxt + 1)
        out[i] = nxt
    if out[0] > last:
        raise ConfigError(f"cannot fit {len(ts)} distinct timesteps below {num_train_timesteps}")
    return out


def thinned_indices(n: int, k: int | None) -> list[int]:
    """Which of an item's ``n`` remaining timesteps a ``k``-step run keeps: evenly spaced, the
    first (the item's start noise level) always kept, the solver's last step going to zero as
    in a k-step schedule. ``k`` None or >= n keeps all.

    Why: a coarse run of a GeNIe candidate must start at the same noisy latent as the full run
    (same t, same ε) so that only the solver's resolution differs, and candidates of different r
    stay distinct (a coarse global schedule rounds nearby r to the same start step).
    """
    if n < 1:
        raise ConfigError(f"an item needs at least one timestep, got {n}")
    if k is None or k >= n:
        return list(range(n))
    if k < 1:
        raise ConfigError(f"max_item_steps must be >= 1, got {k}")
    return [(i * n) // k for i in range(k)]
