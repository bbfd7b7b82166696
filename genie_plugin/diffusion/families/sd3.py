"""Stable Diffusion 3 / 3.5: two CLIP encoders with projection plus T5 (diffusers'
``encode_prompt``: CLIP penultimate states padded to T5's width and joined with T5's on the
sequence axis, pooled = both CLIP projections), a joint-attention transformer, the encoded
empty prompt as the negative."""

from __future__ import annotations

from genie_plugin.diffusion.families.base import Component
from genie_plugin.diffusion.families.flow import FlowFamily


class SD3(FlowFamily):
    name = "sd3"
    title = "Stable Diffusion 3 / 3.5"
    pipelines = ("StableDiffusion3Img2ImgPipeline", "StableDiffusion3Pipeline")
    components = (
        Component("transformer", "diffusers"),
        Component("vae", "diffusers"),
        Component("text_encoder", "transformers"),
        Component("tokenizer", "clip-tokenizer"),
        Component("text_encoder_2", "transformers"),
        Component("tokenizer_2", "clip-tokenizer"),
        Component("text_encoder_3", "transformers", optional=True),  # SD3 runs without T5
        Component("tokenizer_3", "t5-tokenizer", optional=True),
        Component("scheduler", "scheduler"),
    )

    def single_file_pipeline(self):
        from diffusers import StableDiffusion3Pipeline

        return StableDiffusion3Pipeline

    def encode_prompts(self, model, prompts):
        from genie_plugin.diffusion.conditioning import Conditioning

        pipe = self.pipeline(model, self.pipelines[0])
        pe, _npe, pooled, _np = pipe.encode_prompt(
            list(prompts), None, None, device=model.device, num_images_per_prompt=1,
            do_classifier_free_guidance=False,
        )  # fmt: skip
        return Conditioning(text=pe.to(model.dtype), pooled=pooled.to(model.dtype))

    def forward(self, net, x, t, cond):
        return net(
            hidden_states=x,
            timestep=t,
            encoder_hidden_states=cond["text"],
            pooled_projections=cond["pooled"],
            return_dict=False,
        )[0]
