"""The batched GeNIe sampler: one visible loop over diffusers components.

Each item carries its own source image, prompt, noise ratio r and seed. Items are grouped by the
scheduler step at which they join (img2img's rule, see :mod:`genie_plugin.core.schedule`); every
group owns a copy of the scheduler so multistep solvers keep per-item history exactly as if the
item ran alone, while all active items share one UNet call per step. r = 1 starts from pure noise
(the text-to-image pipeline's start, not img2img's ``strength=1`` which leaks ~7% of the source).

Deliberate differences from ``StableDiffusionImg2ImgPipeline`` (documented in README):
sources are encoded with the latent distribution's *mode* (as the reference code), not a sample;
noise is drawn per item on the CPU from the item's own seed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from genie_plugin.core.schedule import (
    shift_timesteps,
    start_index,
    thinned_indices,
    validate_ratio,
)
from genie_plugin.diffusion.schedulers import check_scheduler_name, make_scheduler
from genie_plugin.errors import ConfigError, check_known_keys, check_optional_int
from genie_plugin.seeding import cpu_generator

Denoiser = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


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
    # Guidance interval (Kynkäänniemi et al., NeurIPS 2024): classifier-free guidance only at
    # timesteps >= guidance_t_min × num_train_timesteps; below it the conditional prediction
    # alone (and half the UNet rows). 0 = guidance at every step, as the reference.
    guidance_t_min: float = 0.0
    # At most this many solver steps per item, on an evenly thinned subset of the timesteps it
    # would run (core.schedule.thinned_indices): same start noise, coarser solve. None = all.
    # GeNIe-Ada's probe uses it to score candidates cheaply.
    max_item_steps: int | None = None

    def __post_init__(self) -> None:
        check_scheduler_name(self.scheduler)
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ConfigError(f"steps must be a positive integer, got {self.steps!r}")
        if self.guidance_scale < 0:
            raise ConfigError(f"guidance_scale must be >= 0, got {self.guidance_scale}")
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
        return dict(sorted(d.items()))

    @classmethod
    def from_dict(cls, d: dict) -> SamplerConfig:
        check_known_keys(cls, d, "sampler")
        return cls(**d)


@dataclass(frozen=True, eq=False)
class SampleItem:
    """One image to generate. ``source`` may be None only when ``ratio == 1``."""

    prompt: str
    ratio: float
    seed: int
    source: Image.Image | None = None


def preprocess(image: Image.Image, resolution: int) -> torch.Tensor:
    """Resize the short side to ``resolution`` and center-crop a square (reference.md), to [-1, 1]."""
    img = ImageOps.fit(image.convert("RGB"), (resolution, resolution), Image.Resampling.BICUBIC)
    arr = np.asarray(img, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1)


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """Decoded VAE output in [-1, 1] -> uint8 PIL, rounding as diffusers' postprocess does."""
    x = (images / 2 + 0.5).clamp(0, 1).cpu().permute(0, 2, 3, 1).float().numpy()
    return [Image.fromarray((a * 255).round().astype("uint8")) for a in x]


@torch.no_grad()
def encode_prompts(gen, prompts: Sequence[str]) -> torch.Tensor:
    """CLIP text embeddings, as ``StableDiffusionPipeline.encode_prompt`` computes them."""
    tok = gen.tokenizer(
        list(prompts),
        padding="max_length",
        max_length=gen.tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    )
    mask = None
    if getattr(gen.text_encoder.config, "use_attention_mask", False):
        mask = tok.attention_mask.to(gen.device)
    out = gen.text_encoder(tok.input_ids.to(gen.device), attention_mask=mask)[0]
    return out.to(gen.dtype)


@torch.no_grad()
def encode_images(gen, images: Sequence[Image.Image], max_batch: int = 16) -> torch.Tensor:
    """Source latents: VAE latent distribution mode × scaling factor (reference code)."""
    res = gen.resolution
    outs = []
    for i in range(0, len(images), max_batch):
        x = torch.stack([preprocess(im, res) for im in images[i : i + max_batch]])
        x = x.to(gen.device, gen.vae.dtype)
        outs.append(gen.vae.encode(x).latent_dist.mode() * gen.vae.config.scaling_factor)
    return torch.cat(outs)


@torch.no_grad()
def decode_latents(gen, latents: torch.Tensor, max_batch: int = 16) -> list[Image.Image]:
    """VAE decode in chunks. fp16 guard: an image with NaN/inf pixels (SD's VAE overflows in
    half precision on some latents) is decoded again with an fp32 copy of the VAE; the count is
    kept in ``gen.stats["vae_fp32_reruns"]``."""
    out: list[Image.Image] = []
    for i in range(0, len(latents), max_batch):
        z = latents[i : i + max_batch].to(gen.vae.dtype) / gen.vae.config.scaling_factor
        img = gen.vae.decode(z).sample
        bad = ~torch.isfinite(img).flatten(1).all(1)
        if bad.any():
            img = img.float()
            img[bad] = _fp32_vae(gen).decode(z[bad].float()).sample
            stats = getattr(gen, "stats", None)
            if stats is not None:
                stats["vae_fp32_reruns"] = stats.get("vae_fp32_reruns", 0) + int(bad.sum())
        out.extend(to_pil(img))
    return out


def _fp32_vae(gen):
    """An fp32 copy of the VAE, made once per generator (only when fp16 overflowed)."""
    import copy

    if getattr(gen, "vae_fp32", None) is None:
        gen.vae_fp32 = copy.deepcopy(gen.vae).float()
    return gen.vae_fp32


def torch_denoiser(unet) -> Denoiser:
    def call(sample: torch.Tensor, t: torch.Tensor, ehs: torch.Tensor) -> torch.Tensor:
        return unet(sample, t, encoder_hidden_states=ehs, return_dict=False)[0]

    return call


def _noise(seed: int, shape: tuple[int, ...], device, dtype) -> torch.Tensor:
    # shape (1, C, h, w): same draw as diffusers' randn_tensor with a single generator.
    return torch.randn(shape, generator=cpu_generator(seed), dtype=torch.float32).to(device, dtype)


def base_scheduler(gen, device=None):
    """The run's scheduler with its full (time-shifted) timestep list set."""
    cfg = gen.sampler
    base = make_scheduler(cfg.scheduler, gen.scheduler_config)
    device = gen.device if device is None else device
    base.set_timesteps(cfg.steps, device=device)
    if cfg.timestep_shift != 1.0:
        n_train = base.config.num_train_timesteps
        warped = shift_timesteps(base.timesteps.tolist(), cfg.timestep_shift, n_train)
        base.set_timesteps(timesteps=warped, device=device)
    return base


@torch.no_grad()
def denoise(
    gen,
    items: Sequence[SampleItem],
    *,
    source_latents: dict[int, torch.Tensor],
    text: dict[str, torch.Tensor],
    uncond: torch.Tensor,
    denoiser: Denoiser,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Run the scheduler loop for one batch of items; return their final latents (in order)."""
    cfg = gen.sampler
    base = base_scheduler(gen)
    timesteps = base.timesteps
    order = getattr(base, "order", 1)
    c = gen.unet.config.in_channels
    h = w = gen.resolution // gen.vae_scale_factor
    do_cfg = cfg.guidance_scale > 1.0
    t_min = cfg.guidance_t_min * base.config.num_train_timesteps

    # Group items by join step; each group has its own scheduler and its own timestep list:
    # the schedule's tail from its start (all groups then share every step's t), or an evenly
    # thinned subset of that tail under max_item_steps. Groups are aligned to finish together.
    starts = [0 if it.ratio >= 1.0 else start_index(cfg.steps, it.ratio, order) for it in items]
    groups: dict[int, list[int]] = {}
    for i, s in enumerate(starts):
        groups.setdefault(s, []).append(i)
    state: dict[int, tuple[Any, torch.Tensor, torch.Generator]] = {}
    timeline: dict[int, torch.Tensor] = {}
    for s, idx in sorted(groups.items()):
        tail = timesteps[s:]
        keep = thinned_indices(len(tail), cfg.max_item_steps)
        if len(keep) == len(tail):
            sched = copy.deepcopy(base)
            if hasattr(sched, "set_begin_index"):
                sched.set_begin_index(s)
        else:
            tail = tail[keep]
            sched = make_scheduler(cfg.scheduler, gen.scheduler_config)
            sched.set_timesteps(timesteps=[int(t) for t in tail], device=gen.device)
            if hasattr(sched, "set_begin_index"):
                sched.set_begin_index(0)
            tail = sched.timesteps
        timeline[s] = tail
        lat = []
        for i in idx:
            it = items[i]
            noise = _noise(it.seed, (1, c, h, w), gen.device, gen.dtype)
            if it.ratio >= 1.0:
                lat.append(noise * sched.init_noise_sigma)
            else:
                lat.append(sched.add_noise(source_latents[i], noise, tail[:1]))
        # Step generator: deterministic schedulers ignore it; it keeps diffusers off the global RNG.
        step_gen = cpu_generator(items[idx[0]].seed ^ 0x5EED)
        state[s] = (sched, torch.cat(lat), step_gen)

    n_clock = max(len(tl) for tl in timeline.values())
    join = {s: n_clock - len(tl) for s, tl in timeline.items()}
    embeds = {s: torch.cat([text[items[i].prompt] for i in idx]) for s, idx in groups.items()}
    for clock in range(min(join.values()), n_clock):
        active = [s for s in sorted(groups) if join[s] <= clock]
        ts = {s: timeline[s][clock - join[s]] for s in active}
        guided = [s for s in active if do_cfg and float(ts[s]) >= t_min]
        # scale_model_input is elementwise and depends on the group's step only.
        x = {s: state[s][0].scale_model_input(state[s][1], ts[s]) for s in active}
        rows = [*guided, *active]  # unconditional rows of guided groups, then all conditional
        x_in = torch.cat([x[s] for s in rows])
        ehs = torch.cat(
            [uncond.expand(len(x[s]), -1, -1) for s in guided] + [embeds[s] for s in active]
        )
        t_vec = torch.cat([ts[s].reshape(1).expand(len(x[s])) for s in rows]).to(gen.device)
        eps_all = denoiser(x_in, t_vec, ehs)
        n_u = sum(len(x[s]) for s in guided)
        e_u, e_c = eps_all[:n_u], eps_all[n_u:]
        off_u = off_c = 0
        for s in active:
            sched, lat, g = state[s]
            n = len(lat)
            eps = e_c[off_c : off_c + n]
            off_c += n
            if s in guided:
                u = e_u[off_u : off_u + n]
                off_u += n
                eps = u + cfg.guidance_scale * (eps - u)
            new = sched.step(eps, ts[s], lat, generator=g, return_dict=False)[0]
            state[s] = (sched, new, g)
        if progress is not None:
            progress(off_c)
    out = torch.empty((len(items), c, h, w), device=gen.device, dtype=gen.dtype)
    for s, idx in groups.items():
        out[idx] = state[s][1].to(out.dtype)
    return out


@torch.no_grad()
def sample(
    gen,
    items: Sequence[SampleItem],
    *,
    max_batch: int = 16,
    progress: Callable[[int], None] | None = None,
    denoiser: Denoiser | None = None,
) -> list[Image.Image]:
    """Generate one image per item; results do not depend on batching or item order.

    ``progress`` is called with the number of image-steps done after each UNet call
    (total = :func:`total_image_steps`). ``denoiser`` replaces the UNet call; by default the
    generator's own backend (``gen.with_backend``) makes it, else the eager UNet.
    """
    if not items:
        return []
    if max_batch < 1:
        raise ConfigError(f"max_batch must be >= 1, got {max_batch}")
    for it in items:
        validate_ratio(it.ratio)
        if it.source is None and it.ratio < 1.0:
            raise ConfigError(f"item with ratio {it.ratio} < 1 needs a source image")
        if it.ratio < 1.0:
            start_index(gen.sampler.steps, it.ratio)  # raises if no step would run
    denoiser = denoiser or getattr(gen, "denoiser", None) or torch_denoiser(gen.unet)
    prompts = sorted({it.prompt for it in items})
    embeds = encode_prompts(gen, [*prompts, ""])
    text = {p: embeds[i : i + 1] for i, p in enumerate(prompts)}
    uncond = embeds[-1:]

    # Encode each distinct source image once (GeNIe-Ada shares a source across its ratios).
    uniq: dict[int, int] = {}
    srcs: list[Image.Image] = []
    for it in items:
        if it.source is not None and it.ratio < 1.0 and id(it.source) not in uniq:
            uniq[id(it.source)] = len(srcs)
            srcs.append(it.source)
    enc = encode_images(gen, srcs, max_batch) if srcs else None

    # Chunk in order of steps to run (stable): a chunk then holds items of similar length, so
    # its UNet calls stay near max_batch rows instead of ramping up as late starters join
    # (GeNIe-Ada's grid). Results do not depend on chunking (up to batch rounding).
    steps = item_timesteps(gen, [it.ratio for it in items])
    order = sorted(range(len(items)), key=lambda i: -len(steps[items[i].ratio]))
    images: list[Image.Image | None] = [None] * len(items)
    for b in range(0, len(items), max_batch):
        pos = order[b : b + max_batch]
        chunk = [items[i] for i in pos]
        src = {
            i: enc[uniq[id(it.source)]].unsqueeze(0).to(gen.dtype)
            for i, it in enumerate(chunk)
            if it.source is not None and it.ratio < 1.0
        }
        lat = denoise(
            gen,
            chunk,
            source_latents=src,
            text=text,
            uncond=uncond,
            denoiser=denoiser,
            progress=progress,
        )
        for i, im in zip(pos, decode_latents(gen, lat, max_batch), strict=True):
            images[i] = im
    return images


def item_timesteps(gen, ratios, base=None) -> dict[float, list[int]]:
    """The timesteps an item of each ratio runs (its start step on, thinned under
    ``max_item_steps``): the same lists ``denoise`` steps through, for cost accounting."""
    cfg = gen.sampler
    base = base_scheduler(gen, device="cpu") if base is None else base
    ts = [int(t) for t in base.timesteps.tolist()]
    order = getattr(base, "order", 1)
    out = {}
    for r in set(ratios):
        tail = ts[0 if r >= 1.0 else start_index(cfg.steps, r, order) :]
        out[r] = [tail[j] for j in thinned_indices(len(tail), cfg.max_item_steps)]
    return out


def total_image_steps(gen, items: Sequence[SampleItem]) -> int:
    """Number of UNet image-steps ``sample`` will run (for progress bars and cost reports)."""
    if not items:
        return 0
    tl = item_timesteps(gen, [it.ratio for it in items])
    return sum(len(tl[it.ratio]) for it in items)


def unet_rows(gen, items: Sequence[SampleItem]) -> int:
    """Number of UNet batch rows ``sample`` will run: one per image-step, plus the
    unconditional row of classifier-free guidance at steps inside the guidance interval. The
    generation cost in UNet evaluations (what a compute-bound GPU's time is proportional to)."""
    if not items:
        return 0
    cfg = gen.sampler
    base = base_scheduler(gen, device="cpu")
    tl = item_timesteps(gen, [it.ratio for it in items], base)
    if cfg.guidance_scale > 1.0:
        floor = cfg.guidance_t_min * base.config.num_train_timesteps  # as ``denoise``
        rows = {r: len(t) + sum(1 for x in t if x >= floor) for r, t in tl.items()}
    else:
        rows = {r: len(t) for r, t in tl.items()}
    return sum(rows[it.ratio] for it in items)
