"""Stage ``export``: the diffusers folder (UNet and text encoder fp16, VAE fp32) and the
classifiers, written into the weights folder atomically."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch

from genie_plugin.embedded.training.common import TrainConfig
from genie_plugin.embedded.training.models import build_models
from genie_plugin.io import atomic_write_text


def stage_export(
    work: Path,
    out: Path,
    cfg: TrainConfig,
    tokenizer_dir: Path,
    device: str = "cpu",
    previous: dict | None = None,
) -> Path:
    """Write the diffusers folder (UNet/text encoder fp16, VAE fp32) + classifiers into ``out``."""
    import shutil
    import tempfile

    from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir)
    vae, unet, te = build_models(len(tokenizer), cfg.seed)
    st = torch.load(work / "vae.pt", map_location="cpu", weights_only=False)
    vae.load_state_dict(st["vae"])
    vae.register_to_config(scaling_factor=st["scaling_factor"])
    s = torch.load(work / "unet.pt", map_location="cpu", weights_only=False)
    unet.load_state_dict(s["unet"])
    te.load_state_dict(s["ema_t"] if "ema_t" in s else s["te"])
    scheduler = DPMSolverMultistepScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        steps_offset=1,
        timestep_spacing="linspace",
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=te.half(),
        tokenizer=tokenizer,
        unet=unet.half(),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=out))
    pipe.save_pretrained(tmp / "model", safe_serialization=True)
    for name in ("backbone.safetensors", "oracle.safetensors"):
        shutil.copy2(work / name, tmp / name)
    atomic_write_text(
        tmp / "train_config.json",
        json.dumps(
            {
                **asdict(cfg),
                "vae_steps_done": st.get("steps", cfg.vae_steps),
                "unet_steps_done": s["step"],
                "unet_steps_planned": s.get("planned", cfg.unet_steps),
                "unet_minutes": s.get("minutes"),
                "device": device,
                **({"previous_phase": previous} if previous else {}),
            },
            indent=2,
            sort_keys=True,
        ),
    )
    for child in tmp.iterdir():
        dest = out / child.name
        if dest.exists():
            shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
        child.rename(dest)
    tmp.rmdir()
    return out
