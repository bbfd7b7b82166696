"""The embedded model's architectures (diffusers VAE/UNet, a small CLIP text encoder, a timm
classifier), its tokenizer and SD 1.x's training noise schedule."""

from __future__ import annotations

from pathlib import Path

import torch

from genie_plugin.embedded import shapes


def vocab_words() -> tuple[str, ...]:
    words = {"a", "photo", "of"}
    for name in shapes.CLASSES:
        words.update(name.replace("_", " ").split())
    return tuple(sorted(words))


def build_tokenizer(folder: Path):
    from transformers import CLIPTokenizer

    from genie_plugin.diffusion.tiny import write_char_tokenizer

    write_char_tokenizer(folder, vocab_words(), max_length=16)
    return CLIPTokenizer.from_pretrained(folder)


def build_models(vocab_size: int, seed: int):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 3,
            up_block_types=("UpDecoderBlock2D",) * 3,
            block_out_channels=(16, 32, 64),
            layers_per_block=1,
            latent_channels=4,
            norm_num_groups=16,
            sample_size=shapes.IMAGE_SIZE,
        )
        unet = UNet2DConditionModel(
            sample_size=shapes.IMAGE_SIZE // 4,
            in_channels=4,
            out_channels=4,
            block_out_channels=(64, 128, 192),
            layers_per_block=1,
            down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=64,
            attention_head_dim=8,
            norm_num_groups=16,
        )
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=vocab_size,
                bos_token_id=vocab_size - 2,
                eos_token_id=vocab_size - 1,
                pad_token_id=vocab_size - 1,
                hidden_size=64,
                intermediate_size=128,
                num_attention_heads=4,
                num_hidden_layers=2,
                max_position_embeddings=16,
            )
        )
    return vae, unet, text_encoder


def noise_scheduler():
    from diffusers import DDPMScheduler

    # SD 1.x's training schedule (scaled-linear betas, 1000 steps, epsilon prediction).
    return DDPMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000
    )


def build_classifier(arch: str, num_classes: int, seed: int):
    import timm

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return timm.create_model(arch, pretrained=False, num_classes=num_classes)


@torch.no_grad()
def latent_modes(vae, x, device, chunk: int = 256) -> torch.Tensor:
    """The VAE latent distribution's mode of every image in ``x`` ([-1, 1], N×3×H×W), in
    chunks, unscaled: what the scaling factor is fitted on and what the UNet trains on."""
    return torch.cat(
        [
            vae.encode(x[i : i + chunk].to(device)).latent_dist.mode()
            for i in range(0, len(x), chunk)
        ]
    )
