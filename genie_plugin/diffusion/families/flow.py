"""What SD3 and Flux share: flow matching. The source is noised with ``scale_noise`` (σ-space,
x_σ = (1 − σ)·x + σ·ε), img2img starts ``int(N − N·r)`` steps in, the latents are shifted
before scaling, the network is a transformer, and the only scheduler is the model's own
flow-matching Euler (its shift; dynamic shifting with ``mu`` from the token count)."""

from __future__ import annotations

import torch

from genie_plugin.diffusion.families.base import ModelFamily


class FlowFamily(ModelFamily):
    network = "transformer"
    schedulers = ("flow-euler",)
    flow = True

    def recommended_sampler(self, model) -> dict:
        return {"scheduler": "flow-euler", "steps": 28, "guidance_scale": 7.0}

    def network_embeds_guidance(self, net) -> bool:
        return False  # Flux-dev's guidance embedding never removes rows: none are added

    def start_latent(self, sched, latent, noise, t):
        return sched.scale_noise(latent, t, noise)

    def start_level(self, sched, t) -> float:
        return float(t) / float(sched.config.num_train_timesteps)

    def image_seq_len(self, model) -> int:
        _c, h, w = self.latent_shape(model)
        p = int(getattr(model.unet.config, "patch_size", 1) or 1)
        return (h // p) * (w // p)

    def schedule_kwargs(self, model) -> dict:
        cfg = model.scheduler_config
        if not cfg.get("use_dynamic_shifting"):
            return {}
        from diffusers.pipelines.flux.pipeline_flux import calculate_shift

        mu = calculate_shift(
            self.image_seq_len(model),
            cfg.get("base_image_seq_len", 256),
            cfg.get("max_image_seq_len", 4096),
            cfg.get("base_shift", 0.5),
            cfg.get("max_shift", 1.15),
        )
        return {"mu": mu}

    def plan_facts(self, model) -> tuple:
        return (self.embeds_guidance(model), model.resolution)

    def reference_kwargs(self, model) -> dict:
        return {"height": model.resolution, "width": model.resolution}

    # -- latent codec: (z − shift) · scale ----------------------------------------------------
    def encode_images(self, model, images, max_batch: int = 16):
        from genie_plugin.diffusion.codecs import preprocess

        vae, c = model.vae, model.vae.config
        outs = []
        for i in range(0, len(images), max_batch):
            x = torch.stack([preprocess(im, model.resolution) for im in images[i : i + max_batch]])
            z = vae.encode(x.to(model.device, vae.dtype)).latent_dist.mode()
            outs.append((z - c.shift_factor) * c.scaling_factor)
        return torch.cat(outs)

    def decode_latents(self, model, latents, max_batch: int = 16):
        from genie_plugin.diffusion.codecs import to_pil

        vae, c = model.vae, model.vae.config
        out = []
        for i in range(0, len(latents), max_batch):
            z = latents[i : i + max_batch].to(vae.dtype) / c.scaling_factor + c.shift_factor
            out.extend(to_pil(vae.decode(z).sample))
        return out
