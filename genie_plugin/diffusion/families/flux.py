"""Flux.1 (schnell, dev): CLIP pooled + T5 sequence (diffusers' ``encode_prompt``), latents
packed 2×2 into tokens with position ids for the transformer call only (the scheduler steps
the unpacked latent; its Euler step is elementwise, so the order of elements does not matter),
timesteps as σ, no unconditional rows: dev embeds the guidance scale, schnell has none."""

from __future__ import annotations

import torch

from genie_plugin.diffusion.families.base import Component
from genie_plugin.diffusion.families.flow import FlowFamily


class Flux(FlowFamily):
    name = "flux"
    title = "Flux.1 (schnell, dev)"
    pipelines = ("FluxImg2ImgPipeline", "FluxPipeline")
    components = (
        Component("transformer", "diffusers"),
        Component("vae", "diffusers"),
        Component("text_encoder", "transformers"),
        Component("tokenizer", "clip-tokenizer"),
        Component("text_encoder_2", "transformers"),
        Component("tokenizer_2", "t5-tokenizer"),
        Component("scheduler", "scheduler"),
    )

    def single_file_pipeline(self):
        from diffusers import FluxPipeline

        return FluxPipeline

    def recommended_sampler(self, model) -> dict:
        if self.guidance_embedded(model):  # dev
            return {"scheduler": "flow-euler", "steps": 28, "guidance_scale": 3.5}
        return {"scheduler": "flow-euler", "steps": 4, "guidance_scale": 0.0}  # schnell

    def guidance_embedded(self, model) -> bool:
        return bool(getattr(model.unet.config, "guidance_embeds", False))

    def guided_rows(self, model) -> bool:
        return False  # dev's guidance is an input; the pipeline's "true CFG" needs a negative

    def native_resolution(self, model) -> int:
        return 128 * model.vae_scale_factor  # FluxPipeline.default_sample_size

    def latent_shape(self, model) -> tuple[int, int, int]:
        # the pipeline's unpacked latent: transformer channels / 4, an even height
        h = 2 * (model.resolution // (model.vae_scale_factor * 2))
        return (int(model.unet.config.in_channels) // 4, h, h)

    def schedule_kwargs(self, model) -> dict:
        import numpy as np

        n = model.sampler.steps  # the Flux pipelines' own σ list, then shifted by mu
        return {"sigmas": np.linspace(1.0, 1 / n, n), **super().schedule_kwargs(model)}

    def image_seq_len(self, model) -> int:
        _c, h, w = self.latent_shape(model)
        return (h // 2) * (w // 2)

    def encode_prompts(self, model, prompts):
        from genie_plugin.diffusion.conditioning import Conditioning

        pipe = self.pipeline(model, self.pipelines[0])
        pe, pooled, _ids = pipe.encode_prompt(list(prompts), None, device=model.device,
                                              num_images_per_prompt=1)  # fmt: skip
        c = {"text": pe.to(model.dtype), "pooled": pooled.to(model.dtype)}
        if self.guidance_embedded(model):
            c["guidance"] = torch.full((len(prompts),), float(model.sampler.guidance_scale),
                                       device=model.device, dtype=torch.float32)  # fmt: skip
        return Conditioning(c)

    def prompt_records(self, model, prompts):
        return self._records(model, prompts)

    def forward(self, net, x, t, cond):
        from diffusers import FluxPipeline

        b, c, h, w = x.shape
        packed = FluxPipeline._pack_latents(x, b, c, h, w)
        img_ids = FluxPipeline._prepare_latent_image_ids(b, h // 2, w // 2, x.device, x.dtype)
        txt_ids = torch.zeros(cond["text"].shape[1], 3, device=x.device, dtype=x.dtype)
        out = net(
            hidden_states=packed,
            timestep=t.to(x.dtype) / 1000,
            guidance=cond.get("guidance"),
            pooled_projections=cond["pooled"],
            encoder_hidden_states=cond["text"],
            txt_ids=txt_ids,
            img_ids=img_ids,
            return_dict=False,
        )[0]
        # unpack: the inverse of _pack_latents (tokens of 2×2 patches back to C×h×w)
        out = out.view(b, h // 2, w // 2, c, 2, 2).permute(0, 3, 1, 4, 2, 5)
        return out.reshape(b, c, h, w)
