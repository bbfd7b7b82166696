"""Text and image codecs around the UNet loop: CLIP prompt embeddings, VAE encode and decode.

Each computes what the diffusers pipelines compute (``encode_prompt``, ``image_processor``'s
pre/postprocess), with the reference's choices: sources encoded with the latent *mode*, resized
short side + center crop.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageOps


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
def encode_prompts(model, prompts: Sequence[str]) -> torch.Tensor:
    """CLIP text embeddings, as ``StableDiffusionPipeline.encode_prompt`` computes them
    (learned tokens in the prompts written into the text encoder first: :mod:`.tokens`)."""
    from genie_plugin.diffusion.tokens import register

    register(model, prompts)
    tok = model.tokenizer(
        list(prompts),
        padding="max_length",
        max_length=model.tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    )
    mask = None
    if getattr(model.text_encoder.config, "use_attention_mask", False):
        mask = tok.attention_mask.to(model.device)
    out = model.text_encoder(tok.input_ids.to(model.device), attention_mask=mask)[0]
    return out.to(model.dtype)


@torch.no_grad()
def encode_images(model, images: Sequence[Image.Image], max_batch: int = 16) -> torch.Tensor:
    """Source latents: VAE latent distribution mode × scaling factor (reference code)."""
    res = model.resolution
    outs = []
    for i in range(0, len(images), max_batch):
        x = torch.stack([preprocess(im, res) for im in images[i : i + max_batch]])
        x = x.to(model.device, model.vae.dtype)
        outs.append(model.vae.encode(x).latent_dist.mode() * model.vae.config.scaling_factor)
    return torch.cat(outs)


@torch.no_grad()
def decode_latents(model, latents: torch.Tensor, max_batch: int = 16) -> list[Image.Image]:
    """VAE decode in chunks. fp16 guard: an image with NaN/inf pixels (SD's VAE overflows in
    half precision on some latents) is decoded again with an fp32 copy of the VAE; the count is
    kept in the model's ``stats["vae_fp32_reruns"]``."""
    out: list[Image.Image] = []
    for i in range(0, len(latents), max_batch):
        z = latents[i : i + max_batch].to(model.vae.dtype) / model.vae.config.scaling_factor
        img = model.vae.decode(z).sample
        bad = ~torch.isfinite(img).flatten(1).all(1)
        if bad.any():
            img = img.float()
            img[bad] = model.helpers.fp32_vae(model.vae).decode(z[bad].float()).sample
            stats = model.helpers.stats
            stats["vae_fp32_reruns"] = stats.get("vae_fp32_reruns", 0) + int(bad.sum())
        out.extend(to_pil(img))
    return out
