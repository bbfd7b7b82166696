"""The generation key: everything that changes an image's pixels, normalised, as one type.

Two requests with equal keys must give the same image (up to batch rounding), and any input
that changes the image must change the key — the augmentation cache is only as honest as this
list. Equivalent requests are normalised here, in one place, so they share a key:

- the resolution is resolved (the model's native size given or not is the same image);
- guidance ≤ 1 runs the conditional prediction alone (no CFG), so every such scale, and any
  guidance floor with it, is one setting;
- a per-item step cap that keeps all of an item's steps changes nothing (genie_ada_lite's
  r = 0.5 candidates at a cap of 5 of 10 steps are GeNIe-Ada's own);
- the source image does not enter a pure-noise start (r = 1).
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, fields

#: Bumped whenever the sampler's output for the same inputs changes (a fix to the loop, the
#: noise draw, the decode rounding): old cache entries are then never read as new ones.
GENERATION_VERSION = 2


@dataclass(frozen=True, kw_only=True)
class GenerationKey:
    model: str  # content fingerprint of the weights (and a single file's --config)
    scheduler: str
    steps: int
    guidance_scale: float
    guidance_t_min: float
    timestep_shift: float
    max_item_steps: int | None
    resolution: int
    backend: str  # torch, cuda-graphs, torch-compile, onnx, ...
    backend_variant: str  # e.g. the ONNX graph's own hash (plain / fused / fp16 / a user export)
    dtype: str  # float16 on CUDA, float32 on CPU by default
    device_type: str  # cuda / cpu / mps: kernels differ
    accelerator: str  # the chip the kernels ran on: GPU model + compute capability, CPU ISA
    memory_format: str  # contiguous / channels_last
    prompt: str
    ratio: float
    seed: int
    source: str | None  # content digest of the source image (None for r = 1)
    version: int = GENERATION_VERSION
    # Settings added later, left out of the digest at their defaults so that every key made
    # before them is unchanged: the DDPM timestep spacing, what r means (strength or level).
    timestep_spacing: str = "linspace"
    ratio_meaning: str = "strength"

    def to_dict(self) -> dict:
        # every field is a plain value: no deep copy (``asdict`` cost 4 s of a warm main job)
        d = {name: getattr(self, name) for name in _FIELD_NAMES}
        for name, default in _LATER_DEFAULTS.items():
            if d[name] == default:
                del d[name]
        return d

    def digest(self) -> str:
        payload = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()[:32]


_FIELD_NAMES = tuple(sorted(f.name for f in fields(GenerationKey)))
_LATER_DEFAULTS = {"timestep_spacing": "linspace", "ratio_meaning": "strength"}


def image_digest(im) -> str:
    """Content digest of a PIL image (mode, size, pixels)."""
    h = hashlib.sha256(f"{im.mode}{im.size}".encode())
    h.update(im.tobytes())
    return h.hexdigest()[:20]


def generation_key(model, item) -> GenerationKey:
    """The key of ``item`` (a ``SampleItem``) rendered by ``model`` with its sampler and backend."""
    cfg = model.sampler
    guided = cfg.guidance_scale > 1.0
    cap = cfg.max_item_steps
    facts = generation_key_facts(model)
    return GenerationKey(
        model=model.fingerprint,
        scheduler=cfg.scheduler,
        steps=cfg.steps,
        guidance_scale=float(cfg.guidance_scale) if guided else 1.0,
        guidance_t_min=float(cfg.guidance_t_min) if guided else 0.0,
        timestep_shift=float(cfg.timestep_shift),
        max_item_steps=cap if cap is not None and _thins(model, item.ratio) else None,
        resolution=int(model.resolution),
        backend=facts["backend"],
        backend_variant=facts["backend_variant"],
        dtype=facts["dtype"],
        device_type=_device_type(model.device),
        accelerator=accelerator(model.device),
        memory_format=facts["memory_format"],
        prompt=item.prompt,
        ratio=float(item.ratio),
        seed=int(item.seed),
        source=image_digest(item.source) if item.source is not None and item.ratio < 1.0 else None,
        timestep_spacing=cfg.timestep_spacing,
        ratio_meaning=cfg.ratio_meaning,
    )


def generation_key_facts(model) -> dict:
    """What a key reads of the model's backend, precision and device (strings, JSON-ready)."""
    return {
        "backend": model.backend,
        "backend_variant": str(getattr(model.denoiser, "variant", "") or ""),
        "dtype": str(model.dtype).replace("torch.", ""),
        "device": str(model.device),
        "memory_format": "channels_last" if model.stats.get("channels_last") else "contiguous",
    }


def _thins(model, ratio: float) -> bool:
    """Whether the sampler's per-item step cap drops any of this ratio's steps."""
    if model.sampler.max_item_steps >= model.sampler.steps:
        return False
    from genie_plugin.diffusion.schedulers import schedule_plan

    return schedule_plan(model).drops_steps(ratio)


def _device_type(device) -> str:
    return str(getattr(device, "type", None) or str(device).split(":")[0])


def accelerator(device) -> str:
    """The chip a device's kernels run on, as keys record it: ``"NVIDIA H100 80GB HBM3 sm_90"``
    on CUDA (an A100's and an H100's kernels give other bits, so their images never share a
    key), the ATen CPU capability on a CPU (``"cpu AVX2"``: oneDNN's AVX2 and AVX-512
    convolutions differ in the last bits too). Read live, never from a stored record: one
    cache serves a farm of mixed GPUs."""
    kind = _device_type(device)
    if kind == "cuda":
        index = getattr(device, "index", None)
        if index is None and ":" in str(device):
            index = int(str(device).split(":")[1])
        return _cuda_accelerator(index)
    if kind == "cpu":
        return _cpu_accelerator()
    return kind


@functools.cache
def _cuda_accelerator(index: int | None) -> str:  # pragma: no cover - CUDA only
    import torch

    i = torch.cuda.current_device() if index is None else index
    major, minor = torch.cuda.get_device_capability(i)
    return f"{torch.cuda.get_device_name(i)} sm_{major}{minor}"


@functools.cache
def _cpu_accelerator() -> str:
    import torch

    return f"cpu {torch.backends.cpu.get_cpu_capability()}"
