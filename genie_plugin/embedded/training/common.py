"""What every training stage shares: the config, the JSONL log, atomic checkpoints, step
planning under a time budget, the progress bar, autocast."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genie_plugin.io import atomic_write_bytes, atomic_write_text


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    seed: int = 0
    gen_images_per_class: int = 200  # generator pool (diffusion model + oracle)
    fewshot_images_per_class: int = 120  # benchmark pool (backbone: base classes only)
    vae_steps: int = 1200  # 0 = as many as fit in vae_minutes (timed on this device)
    vae_minutes: float = 2.0
    vae_batch: int = 64
    unet_steps: int = 5000  # 0 = as many as fit in unet_max_minutes (timed on this device)
    unet_batch: int = 64
    unet_lr: float = 3e-4
    unet_max_minutes: float = 55.0  # stop early (and export) if the budget runs out
    empty_caption_p: float = 0.1  # caption dropout for classifier-free guidance
    min_snr_gamma: float = 5.0
    ema_decay: float = 0.999
    clf_epochs: int = 30
    clf_image_size: int = 64
    backbone_arch: str = "regnetx_002"
    ckpt_every: int = 250


def autocast(device):
    """bf16 autocast on CUDA (the small nets are launch-bound there); plain fp32 on CPU."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=torch.device(device).type == "cuda")


class Log:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, **rec) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"time": round(time.time(), 1), **rec}, sort_keys=True) + "\n")


def plan_steps(work: Path, name: str, requested: int, minutes: float, step_fn, device) -> int:
    """Steps for a stage: ``requested`` if > 0, else as many as fit in ``minutes``.

    The estimate times ``step_fn`` (which trains throwaway copies) and is stored in the work dir,
    so a resumed run keeps the same total and therefore the same learning-rate schedule.
    """
    if requested > 0:
        return requested
    plan = work / f"{name}_plan.json"
    if plan.exists():
        return int(json.loads(plan.read_text())["steps"])
    for _ in range(10):
        step_fn()
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for _ in range(30):
        step_fn()
    sync()
    per_step = (time.perf_counter() - t0) / 30
    steps = max(100, int(minutes * 60 / per_step))
    atomic_write_text(plan, json.dumps({"steps": steps, "seconds_per_step": per_step}) + "\n")
    return steps


def save_ckpt(path: Path, state: dict) -> None:
    import io

    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def to_tensor(x: np.ndarray) -> torch.Tensor:
    """uint8 N×H×W×3 -> float N×3×H×W in [-1, 1]."""
    return torch.from_numpy(x).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def cosine_lr(opt, total: int, warmup: int):
    """Linear warm-up then cosine decay to zero: diffusers' schedule, stepped once per step."""
    from diffusers.optimization import get_cosine_schedule_with_warmup

    return get_cosine_schedule_with_warmup(opt, num_warmup_steps=warmup, num_training_steps=total)


def progress(total: int, desc: str, start: int = 0):
    from genie_plugin.progress import make_progress

    p = make_progress()
    task = p.add_task(desc, total=total, completed=start, info="")
    return p, task
