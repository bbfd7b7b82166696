"""Seeded tiny random models of every family, built from configs (no downloads) and saved
with ``save_pretrained``, so they load through the same loader as a real checkpoint. Sizes
follow diffusers' own pipeline tests, smaller where the family allows."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from genie_plugin.diffusion.tiny import write_char_tokenizer


def _clip_tokenizer():
    from transformers import CLIPTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        n = write_char_tokenizer(Path(tmp))
        return CLIPTokenizer.from_pretrained(tmp), n


def _clip(cls, vocab: int, hidden: int, projection: int | None = None):
    from transformers import CLIPTextConfig

    kw = {"projection_dim": projection} if projection else {}
    return cls(CLIPTextConfig(
        bos_token_id=vocab - 2, eos_token_id=vocab - 1, pad_token_id=vocab - 1,
        hidden_size=hidden, intermediate_size=2 * hidden, num_attention_heads=2,
        num_hidden_layers=2, vocab_size=vocab, max_position_embeddings=77, **kw,
    ))  # fmt: skip


def t5_tokenizer(max_length: int = 32):
    """A T5 fast tokenizer (unigram over single characters), as T5TokenizerFast saves it."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    chars = [chr(c) for c in range(33, 127)] + ["▁"]
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [(c, -1.0) for c in chars]
    tk = Tokenizer(models.Unigram(vocab, unk_id=2))
    tk.pre_tokenizer = pre_tokenizers.Metaspace()
    tk.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", 1)]
    )
    return T5TokenizerFast(tokenizer_object=tk, eos_token="</s>", unk_token="<unk>",
                           pad_token="<pad>", extra_ids=0, model_max_length=max_length)  # fmt: skip


def _t5(vocab: int, d_model: int):
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(
        vocab_size=vocab, d_model=d_model, d_kv=8, d_ff=2 * d_model, num_layers=2, num_heads=2,
        relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    ))  # fmt: skip


def _vae(latent_channels: int = 4, **kw):
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=(8, 16), in_channels=3, out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=latent_channels, norm_num_groups=4, sample_size=32, **kw,
    )  # fmt: skip


def _ddpm_scheduler(**kw):
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012,
                                  beta_schedule="scaled_linear", steps_offset=1, **kw)  # fmt: skip


def sdxl(refiner: bool = False, lcm: bool = False, turbo: bool = False, seed: int = 0):
    """SDXL base (two CLIP encoders) or refiner (the second only, aesthetic-score ids)."""
    from diffusers import (
        StableDiffusionXLImg2ImgPipeline,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )

    tok, n = _clip_tokenizer()
    tok2, _ = _clip_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        te = None if refiner else _clip(__import__("transformers").CLIPTextModel, n, 16)
        te2 = _clip(__import__("transformers").CLIPTextModelWithProjection, n, 16, projection=16)
        ids = 5 if refiner else 6
        unet = UNet2DConditionModel(
            block_out_channels=(8, 16), layers_per_block=1, sample_size=16, in_channels=4,
            out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
            use_linear_projection=True, addition_embed_type="text_time",
            addition_time_embed_dim=8, transformer_layers_per_block=(1, 1),
            projection_class_embeddings_input_dim=8 * ids + 16,
            cross_attention_dim=16 if refiner else 32, norm_num_groups=4,
            time_cond_proj_dim=8 if lcm else None,
        )  # fmt: skip
        vae = _vae(force_upcast=True)
    sched = _ddpm_scheduler(timestep_spacing="trailing" if turbo else "leading")
    cls = StableDiffusionXLImg2ImgPipeline if refiner else StableDiffusionXLPipeline
    return cls(vae=vae, text_encoder=te, text_encoder_2=te2, tokenizer=None if refiner else tok,
               tokenizer_2=tok2, unet=unet, scheduler=sched,
               **({"requires_aesthetics_score": True} if refiner else {}))  # fmt: skip


def sd(lcm: bool = False, turbo: bool = False, seed: int = 0):
    """SD 1.x (the tiny-random architecture); ``lcm``: a guidance-embedding UNet (LCM)."""
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel

    tok, n = _clip_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        te = _clip(__import__("transformers").CLIPTextModel, n, 16)
        unet = UNet2DConditionModel(
            block_out_channels=(8, 16), layers_per_block=1, sample_size=16, in_channels=4,
            out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=16,
            attention_head_dim=4, norm_num_groups=4, time_cond_proj_dim=8 if lcm else None,
        )  # fmt: skip
        vae = _vae()
    sched = _ddpm_scheduler(timestep_spacing="trailing" if turbo else "leading")
    return StableDiffusionPipeline(vae=vae, text_encoder=te, tokenizer=tok, unet=unet,
                                   scheduler=sched, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)  # fmt: skip


def sd3(seed: int = 0, shift: float = 3.0):
    """SD3: two CLIP encoders with projection and T5; a joint-attention transformer."""
    from diffusers import (
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )
    from transformers import CLIPTextModelWithProjection

    tok, n = _clip_tokenizer()
    tok2, _ = _clip_tokenizer()
    tok3 = t5_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        te = _clip(CLIPTextModelWithProjection, n, 16, projection=16)
        te2 = _clip(CLIPTextModelWithProjection, n, 16, projection=16)
        te3 = _t5(len(tok3), 32)
        transformer = SD3Transformer2DModel(
            sample_size=16, patch_size=2, in_channels=8, num_layers=1, attention_head_dim=8,
            num_attention_heads=2, caption_projection_dim=16, joint_attention_dim=32,
            pooled_projection_dim=32, out_channels=8,
        )  # fmt: skip
        vae = _vae(latent_channels=8, shift_factor=0.0609, scaling_factor=1.5035)
    sched = FlowMatchEulerDiscreteScheduler(shift=shift)
    return StableDiffusion3Pipeline(transformer=transformer, scheduler=sched, vae=vae,
                                    text_encoder=te, tokenizer=tok, text_encoder_2=te2,
                                    tokenizer_2=tok2, text_encoder_3=te3, tokenizer_3=tok3)  # fmt: skip


def flux(seed: int = 0, guidance: bool = False):
    """Flux.1 (schnell; ``guidance``: dev's guidance embedding): CLIP + T5, 2×2-packed latents."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextModel

    tok, n = _clip_tokenizer()
    tok2 = t5_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        te = _clip(CLIPTextModel, n, 16)
        te2 = _t5(len(tok2), 32)
        transformer = FluxTransformer2DModel(
            patch_size=1, in_channels=16, num_layers=1, num_single_layers=1,
            attention_head_dim=8, num_attention_heads=2, joint_attention_dim=32,
            pooled_projection_dim=16, axes_dims_rope=[2, 2, 4], guidance_embeds=guidance,
        )  # fmt: skip
        vae = _vae(latent_channels=4, shift_factor=0.1159, scaling_factor=0.3611)
    sched = FlowMatchEulerDiscreteScheduler(
        shift=3.0, use_dynamic_shifting=True, base_image_seq_len=256, max_image_seq_len=4096,
        base_shift=0.5, max_shift=1.15,
    )  # fmt: skip
    return FluxPipeline(scheduler=sched, vae=vae, text_encoder=te, tokenizer=tok,
                        text_encoder_2=te2, tokenizer_2=tok2, transformer=transformer)  # fmt: skip


def saved(pipe, folder: Path) -> Path:
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def lora(
    pipe, folder: Path, *, seed: int = 1, rank: int = 4, text_encoder: bool = True, std: float = 0.3
) -> Path:
    """A seeded random LoRA for ``pipe``'s UNet/transformer (and text encoder), saved with the
    pipeline class's own ``save_lora_weights`` as a trained one would be (the diffusers
    format ``load_lora_weights`` reads). ``pipe`` is left unchanged."""
    import copy

    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig, get_peft_model_state_dict

    net_name = "transformer" if hasattr(pipe, "transformer") and pipe.transformer else "unet"
    net = copy.deepcopy(getattr(pipe, net_name))
    layers = {f"{net_name}_lora_layers": None}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                   target_modules=["to_q", "to_k", "to_v", "to_out.0"]))  # fmt: skip
        for name, p in net.named_parameters():
            if "lora_B" in name:  # peft starts B at zero (a no-op adapter): make it do something
                p.data.normal_(0, std)
        layers[f"{net_name}_lora_layers"] = convert_state_dict_to_diffusers(
            get_peft_model_state_dict(net)
        )
        if text_encoder and net_name == "unet":
            te = copy.deepcopy(pipe.text_encoder)
            te.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                      target_modules=["q_proj", "k_proj", "v_proj", "out_proj"]))  # fmt: skip
            for name, p in te.named_parameters():
                if "lora_B" in name:
                    p.data.normal_(0, std)
            layers["text_encoder_lora_layers"] = convert_state_dict_to_diffusers(
                get_peft_model_state_dict(te)
            )
    folder.mkdir(parents=True, exist_ok=True)
    type(pipe).save_lora_weights(str(folder), **layers, safe_serialization=True)
    return folder / "pytorch_lora_weights.safetensors"
