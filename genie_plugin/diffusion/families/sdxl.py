"""SDXL base and refiner: two CLIP text encoders (the refiner has the second only), penultimate
hidden states concatenated, the second encoder's pooled projection and the size/crop (or
aesthetic-score) ids as added conditioning; an empty negative is zeros where the pipeline says
``force_zeros_for_empty_prompt``; a VAE with ``force_upcast`` encodes and decodes in fp32.
Prompt and id encoding are diffusers' own (``encode_prompt``, ``_get_add_time_ids``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from genie_plugin.diffusion.families.base import Component, ModelFamily

#: The img2img pipeline's defaults (a refiner reads the aesthetic scores instead of sizes).
AESTHETIC_SCORE, NEGATIVE_AESTHETIC_SCORE = 6.0, 2.5


class SDXL(ModelFamily):
    name = "sdxl"
    title = "Stable Diffusion XL (base, refiner; LCM and Turbo distillations)"
    pipelines = ("StableDiffusionXLImg2ImgPipeline", "StableDiffusionXLPipeline")
    components = (
        Component("unet", "diffusers"),
        Component("vae", "diffusers"),
        Component("text_encoder", "transformers", optional=True),  # the refiner has none
        Component("tokenizer", "clip-tokenizer", optional=True),
        Component("text_encoder_2", "transformers"),
        Component("tokenizer_2", "clip-tokenizer"),
        Component("scheduler", "scheduler"),
    )

    def options(self, index: dict) -> dict:
        return {
            "force_zeros_for_empty_prompt": bool(index.get("force_zeros_for_empty_prompt", True)),
            "requires_aesthetics_score": bool(index.get("requires_aesthetics_score", False)),
        }

    def single_file_pipeline(self):
        from diffusers import StableDiffusionXLPipeline

        return StableDiffusionXLPipeline

    def _encode(self, model, prompts: Sequence[str], negative: bool):
        from genie_plugin.diffusion.tokens import register

        register(model, prompts)  # learned words in the prompts, into both text encoders
        pipe = self.pipeline(model, self.pipelines[0])
        pe, npe, pooled, npooled = pipe.encode_prompt(
            list(prompts), device=model.device, num_images_per_prompt=1,
            do_classifier_free_guidance=negative,
        )  # fmt: skip
        ids = self._time_ids(model, pipe, pe.dtype, pooled)
        if negative:
            return pe, npe, pooled, npooled, ids
        return pe, pooled, ids

    def _time_ids(self, model, pipe, dtype, pooled):
        res = (model.resolution, model.resolution)
        te2 = model.parts.get("text_encoder_2")
        proj = int(te2.config.projection_dim) if te2 is not None else int(pooled.shape[-1])
        ids, neg = pipe._get_add_time_ids(
            res, (0, 0), res, AESTHETIC_SCORE, NEGATIVE_AESTHETIC_SCORE, res, (0, 0), res,
            dtype=dtype, text_encoder_projection_dim=proj,
        )  # fmt: skip
        return ids.to(model.device), neg.to(model.device)

    def prompt_records(self, model, prompts):
        return self._records(model, prompts)

    def encode_prompts(self, model, prompts):
        from genie_plugin.diffusion.conditioning import Conditioning

        pe, pooled, (ids, _neg) = self._encode(model, prompts, negative=False)
        n = len(prompts)
        c = {"text": pe.to(model.dtype), "pooled": pooled.to(model.dtype),
             "time_ids": ids.repeat(n, 1).to(model.dtype)}  # fmt: skip
        if (w := self._guidance_embedding(model, n)) is not None:
            c["timestep_cond"] = w
        return Conditioning(c)

    def unconditional(self, model):
        from genie_plugin.diffusion.conditioning import Conditioning

        _pe, npe, _pooled, npooled, (_ids, neg) = self._encode(model, [""], negative=True)
        c = {"text": npe.to(model.dtype), "pooled": npooled.to(model.dtype),
             "time_ids": neg.to(model.dtype)}  # fmt: skip
        if (w := self._guidance_embedding(model, 1)) is not None:
            c["timestep_cond"] = w
        return Conditioning(c)

    def forward(self, net, x, t, cond):
        return net(
            x,
            t,
            encoder_hidden_states=cond["text"],
            timestep_cond=cond.get("timestep_cond"),
            added_cond_kwargs={"text_embeds": cond["pooled"], "time_ids": cond["time_ids"]},
            return_dict=False,
        )[0]

    # -- latent codec (force_upcast: fp32 VAE in fp16 runs, as the pipeline) ----------------
    def _vae(self, model):
        if model.vae.dtype == torch.float16 and getattr(model.vae.config, "force_upcast", False):
            return model.helpers.fp32_vae(model.vae)
        return model.vae

    def encode_images(self, model, images, max_batch: int = 16):
        from genie_plugin.diffusion.codecs import preprocess

        vae = self._vae(model)
        mean, std = _latent_stats(vae)
        outs = []
        for i in range(0, len(images), max_batch):
            x = torch.stack([preprocess(im, model.resolution) for im in images[i : i + max_batch]])
            z = vae.encode(x.to(model.device, vae.dtype)).latent_dist.mode().to(model.dtype)
            if mean is not None:
                z = (z - mean.to(z)) * vae.config.scaling_factor / std.to(z)
            else:
                z = z * vae.config.scaling_factor
            outs.append(z)
        return torch.cat(outs)

    def decode_latents(self, model, latents, max_batch: int = 16):
        from genie_plugin.diffusion.codecs import to_pil

        vae = self._vae(model)
        mean, std = _latent_stats(vae)
        out = []
        for i in range(0, len(latents), max_batch):
            z = latents[i : i + max_batch].to(vae.dtype)
            if mean is not None:
                z = z * std.to(z) / vae.config.scaling_factor + mean.to(z)
            else:
                z = z / vae.config.scaling_factor
            out.extend(to_pil(vae.decode(z).sample))
        return out


def _latent_stats(vae):
    c = vae.config
    if getattr(c, "latents_mean", None) is None or getattr(c, "latents_std", None) is None:
        return None, None
    n = len(c.latents_mean)
    return torch.tensor(c.latents_mean).view(1, n, 1, 1), torch.tensor(c.latents_std).view(
        1, n, 1, 1
    )
