"""The batched GeNIe sampler: one visible loop over diffusers components, for every family.

Each item carries its own source image, prompt, noise ratio r and seed. ``sample`` encodes the
prompts and sources once (the family's codecs, :mod:`~genie_plugin.diffusion.families`), runs chunks of items through
the loop (:mod:`~genie_plugin.diffusion.loop`) along their schedule plan
(:mod:`genie_plugin.core.plan`) and decodes. Cost counts (progress totals, UNet rows) read the
same plan, so they cannot drift from what the loop runs.

Deliberate differences from ``StableDiffusionImg2ImgPipeline`` (docs/library.md): sources are
encoded with the latent distribution's *mode* (as the reference code), not a sample; noise is
drawn per item on the CPU from the item's own seed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from PIL import Image

from genie_plugin.core.schedule import validate_ratio
from genie_plugin.diffusion.loop import Denoiser, denoise, torch_denoiser
from genie_plugin.diffusion.schedulers import schedule_plan
from genie_plugin.errors import ConfigError


@dataclass(frozen=True, eq=False)
class SampleItem:
    """One image to generate. ``source`` may be None only when ``ratio == 1``."""

    prompt: str
    ratio: float
    seed: int
    source: Image.Image | None = None


def sample(
    model,
    items: Sequence[SampleItem],
    *,
    max_batch: int = 16,
    progress: Callable[[int], None] | None = None,
    denoiser: Denoiser | None = None,
) -> list[Image.Image]:
    """Generate one image per item; results do not depend on batching or item order.

    ``progress`` is called with the number of image-steps done after each UNet call
    (total = :func:`total_image_steps`). ``denoiser`` replaces the UNet call; by default the
    generator's own backend (``model.with_backend``) makes it, else the eager UNet.
    """
    # a ``with`` block, not ``@torch.no_grad()``: mutmut skips decorated functions, and this
    # body is what the mutation score must measure
    with torch.no_grad():
        return _sample(model, items, max_batch=max_batch, progress=progress, denoiser=denoiser)


def _sample(model, items, *, max_batch, progress, denoiser) -> list[Image.Image]:
    if not items:
        return []
    if max_batch < 1:
        raise ConfigError(f"max_batch must be >= 1, got {max_batch}")
    for it in items:
        validate_ratio(it.ratio)
        if it.source is None and it.ratio < 1.0:
            raise ConfigError(f"item with ratio {it.ratio} < 1 needs a source image")
    plan = schedule_plan(model)
    for r in {it.ratio for it in items}:
        plan.start(r)  # raises if no step would run
    fam = model.adapter
    denoiser = denoiser or model.denoiser or torch_denoiser(model)
    prompts = sorted({it.prompt for it in items})
    text, uncond = fam.prompt_records(model, prompts)

    # Encode each distinct source image once (GeNIe-Ada shares a source across its ratios).
    uniq: dict[int, int] = {}
    srcs: list[Image.Image] = []
    for it in items:
        if it.source is not None and it.ratio < 1.0 and id(it.source) not in uniq:
            uniq[id(it.source)] = len(srcs)
            srcs.append(it.source)
    enc = fam.encode_images(model, srcs, max_batch) if srcs else None

    # Chunk in order of steps to run (stable): a chunk then holds items of similar length, so
    # its UNet calls stay near max_batch rows instead of ramping up as late starters join
    # (GeNIe-Ada's grid). Results do not depend on chunking (up to batch rounding).
    n_steps = {r: len(plan.item_timesteps(r)) for r in {it.ratio for it in items}}
    by_length = sorted(range(len(items)), key=lambda i: -n_steps[items[i].ratio])
    images: list[Image.Image | None] = [None] * len(items)
    for b in range(0, len(items), max_batch):
        pos = by_length[b : b + max_batch]
        chunk = [items[i] for i in pos]
        src = {
            i: enc[uniq[id(it.source)]].unsqueeze(0).to(model.dtype)
            for i, it in enumerate(chunk)
            if it.source is not None and it.ratio < 1.0
        }
        lat = denoise(
            model,
            chunk,
            source_latents=src,
            text=text,
            uncond=uncond,
            denoiser=denoiser,
            progress=progress,
        )
        for i, im in zip(pos, fam.decode_latents(model, lat, max_batch), strict=True):
            images[i] = im
    return images


def total_image_steps(model, items: Sequence[SampleItem]) -> int:
    """Number of UNet image-steps ``sample`` will run (for progress bars and cost reports)."""
    if not items:
        return 0
    return schedule_plan(model).image_steps([it.ratio for it in items])


def unet_rows(model, items: Sequence[SampleItem]) -> int:
    """Number of UNet batch rows ``sample`` will run: one per image-step, plus the
    unconditional row of classifier-free guidance at steps at or above the guidance floor. The
    generation cost in UNet evaluations (what a compute-bound GPU's time is proportional to)."""
    if not items:
        return 0
    return schedule_plan(model).unet_rows([it.ratio for it in items])


def start_level(model, ratio: float) -> float:
    """The noise level an item of this ratio actually starts from, in [0, 1] (1: pure noise):
    ``sqrt(1 − ᾱ_t)`` at its first timestep for ε/v models, σ for flow models. Manifests record
    it, so a strength-mode r and a level-mode r can be compared by what they did."""
    r = float(ratio)
    if r >= 1.0:
        return 1.0
    from genie_plugin.diffusion import families
    from genie_plugin.diffusion.schedulers import base_scheduler

    key = (id(model.scheduler_config), model.sampler, r)
    if key not in _LEVELS:
        if len(_LEVELS) > 4096:
            _LEVELS.clear()
        t0 = schedule_plan(model).item_timesteps(r)[0]
        sched = base_scheduler(model, device="cpu")
        _LEVELS[key] = (model.scheduler_config, round(families.of(model).start_level(sched, t0), 6))
    return _LEVELS[key][1]


_LEVELS: dict = {}
