"""What one model family is to the sampler: its components, its prompt encoding into a
:class:`~genie_plugin.diffusion.conditioning.Conditioning`, its latent codec, how noise is added
at the start, and the network call. The defaults are Stable Diffusion 1.x/2.x (ε or v
prediction, DDPM-style noise, a UNet); the other families override what differs.

A family is stateless (one instance per family); what it needs of a loaded model it reads off
the model (``model.parts``, ``model.options``), and diffusers' own pipeline helpers
(``encode_prompt``, ``_get_add_time_ids``, Flux's packing) run on a pipeline object that holds
the same modules (:meth:`ModelFamily.pipeline`), made once per model — nothing is patched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class Component:
    """A component folder: its loader kind and whether a folder may lack it."""

    folder: str
    kind: str  # "diffusers" | "transformers" | "clip-tokenizer" | "t5-tokenizer" | "scheduler"
    optional: bool = False


class ModelFamily:
    name: ClassVar[str] = "sd"
    title: ClassVar[str] = "Stable Diffusion 1.x/2.x"
    #: the pipelines a run of this family must equal (tests; ``genie model info``)
    pipelines: ClassVar[tuple[str, str]] = (
        "StableDiffusionImg2ImgPipeline",
        "StableDiffusionPipeline",
    )
    components: ClassVar[tuple[Component, ...]] = (
        Component("unet", "diffusers"),
        Component("vae", "diffusers"),
        Component("text_encoder", "transformers"),
        Component("tokenizer", "clip-tokenizer"),
        Component("scheduler", "scheduler"),
    )
    #: the denoising network's folder (``unet`` or ``transformer``)
    network: ClassVar[str] = "unet"
    #: schedulers this family runs (names of :mod:`genie_plugin.diffusion.schedulers`)
    schedulers: ClassVar[tuple[str, ...]] = ("dpm++", "ddim", "euler", "lcm", "tcd")
    #: flow matching (σ-space noise, ``scale_noise``) rather than DDPM's ``add_noise``
    flow: ClassVar[bool] = False

    # -- loading ---------------------------------------------------------------------------
    def load(self, source: str, dtype, **kw) -> tuple[dict, Any]:
        """Components by folder name (``unet``, ``vae``, ``text_encoder``, ``tokenizer``...) and
        the scheduler config, read with diffusers'/transformers' own ``from_pretrained``."""
        from genie_plugin.diffusion.families.loaders import load_components

        return load_components(self.components, source, dtype, **kw)

    def options(self, index: dict) -> dict:
        """Pipeline-level settings from ``model_index.json`` that change images."""
        return {}

    def single_file_pipeline(self):
        """The diffusers pipeline class whose ``from_single_file`` reads this family."""
        from diffusers import StableDiffusionPipeline

        return StableDiffusionPipeline

    # -- sampler defaults --------------------------------------------------------------------
    def recommended_sampler(self, model) -> dict:
        """Sampler settings for a checkpoint of this family that carries no genie_sampler.json
        (empty: the reference's SD 1.5 settings)."""
        if self.embeds_guidance(model):  # LCM: guidance is an input (w-embedding), few steps
            return {"scheduler": "lcm", "steps": 4, "guidance_scale": 8.0}
        if dict(model.scheduler_config).get("timestep_spacing") == "trailing":
            # SD-Turbo / SDXL-Turbo ship a trailing-spaced Euler config: 1–4 steps, no CFG
            return {"scheduler": "euler", "timestep_spacing": "trailing", "steps": 4,
                    "guidance_scale": 0.0}  # fmt: skip
        return {}

    # -- conditioning ------------------------------------------------------------------------
    def encode_prompts(self, model, prompts: Sequence[str]):
        """One conditioning row per prompt, as the family's pipeline computes it."""
        from genie_plugin.diffusion.codecs import encode_prompts
        from genie_plugin.diffusion.conditioning import Conditioning

        c = {"text": encode_prompts(model, prompts)}
        if (w := self._guidance_embedding(model, len(prompts))) is not None:
            c["timestep_cond"] = w
        return Conditioning(c)

    def prompt_records(self, model, prompts: Sequence[str]):
        """One record per distinct prompt and the unconditional one. SD encodes them in one
        batch (the empty prompt last), as it always has: the committed boards' bits."""
        rec = self.encode_prompts(model, [*prompts, ""])
        n = len(prompts)
        return {p: rec.take(i, i + 1) for i, p in enumerate(prompts)}, rec.take(n, n + 1)

    def unconditional(self, model):
        """The one row classifier-free guidance subtracts (SD: the encoded empty prompt)."""
        return self.encode_prompts(model, [""])

    def embeds_guidance(self, model) -> bool:
        """Guidance is an input of the network (LCM's w-embedding), never a second row."""
        return bool(model.guidance_embedded)

    def network_embeds_guidance(self, net) -> bool:
        """What a loaded network says (``time_cond_proj_dim``: LCM's w-embedding)."""
        return getattr(net.config, "time_cond_proj_dim", None) is not None

    def guided_rows(self, model) -> bool:
        """Whether classifier-free guidance doubles the network's rows."""
        return model.sampler.guidance_scale > 1.0 and not self.embeds_guidance(model)

    def _guidance_embedding(self, model, n: int):
        dim = getattr(model.unet.config, "time_cond_proj_dim", None)
        if dim is None:
            return None
        import torch
        from diffusers import StableDiffusionPipeline

        w = torch.tensor(model.sampler.guidance_scale - 1).repeat(n)
        emb = StableDiffusionPipeline.get_guidance_scale_embedding(None, w, embedding_dim=dim)
        return emb.to(model.device, model.dtype)

    def _records(self, model, prompts: Sequence[str]):
        """Prompt records encoded apart from the unconditional row (families whose negative is
        not simply the encoded empty prompt)."""
        rec = self.encode_prompts(model, list(prompts)) if prompts else None
        text = {p: rec.take(i, i + 1) for i, p in enumerate(prompts)} if rec else {}
        return text, self.unconditional(model)

    # -- the network ---------------------------------------------------------------------------
    def forward(self, net, x, t, cond):
        """One network call on rows ``x`` at timesteps ``t`` with conditioning rows ``cond``."""
        return net(
            x,
            t,
            encoder_hidden_states=cond["text"],
            timestep_cond=cond.get("timestep_cond"),
            return_dict=False,
        )[0]

    def example_inputs(self, model, rows: int, rng):
        """A seeded batch of ``rows`` network inputs at the run's shapes (backend timing, the
        memory probe): latents, timesteps, the unconditional record repeated."""
        import torch

        x = torch.randn(rows, *self.latent_shape(model), generator=rng)
        t = torch.linspace(999, 21, rows)
        cond = self.unconditional(model).expand(rows).map(lambda v: v.contiguous())
        return x.to(model.device, model.dtype), t.to(model.device), cond

    def latent_shape(self, model) -> tuple[int, int, int]:
        """(channels, height, width) of one item's latent as the scheduler steps it."""
        h = model.resolution // model.vae_scale_factor
        return (int(model.unet.config.in_channels), h, h)

    def native_resolution(self, model) -> int:
        return int(model.unet.config.sample_size) * model.vae_scale_factor

    # -- schedule --------------------------------------------------------------------------
    def plan_facts(self, model) -> tuple:
        """What the schedule plan reads of the model besides its sampler and scheduler config
        (guidance as an input changes which rows run)."""
        return (self.embeds_guidance(model),)

    def schedule_kwargs(self, model) -> dict:
        """What the family's pipeline passes ``set_timesteps`` besides the step count."""
        return {}

    def start_latent(self, sched, latent, noise, t):
        """The source latent noised to timestep ``t`` (DDPM: ``add_noise``)."""
        return sched.add_noise(latent, noise, t)

    def start_level(self, sched, t) -> float:
        """The noise level an item starting at ``t`` begins from, in [0, 1]: DDPM's
        ``sqrt(1 − ᾱ_t)`` (the noise's share of the signal), a flow model's σ."""
        a = sched.alphas_cumprod[int(t)]
        return float((1 - a) ** 0.5)

    # -- latent codec --------------------------------------------------------------------
    def encode_images(self, model, images, max_batch: int = 16):
        from genie_plugin.diffusion.codecs import encode_images

        return encode_images(model, images, max_batch)

    def decode_latents(self, model, latents, max_batch: int = 16):
        from genie_plugin.diffusion.codecs import decode_latents

        return decode_latents(model, latents, max_batch)

    # -- diffusers helpers ---------------------------------------------------------------------
    def pipeline(self, model, cls_name: str | None = None):
        """A diffusers pipeline over the model's own modules (its helper methods only)."""
        import diffusers

        key = cls_name or self.pipelines[1]
        cache = model.helpers.pipelines
        if key not in cache:
            cls = getattr(diffusers, key)
            cache[key] = cls(**self.pipeline_kwargs(model, cls))
        return cache[key]

    def reference_kwargs(self, model) -> dict:
        """Extra arguments a run passes the family's pipelines to mean what the sampler runs
        (the tests' reference calls)."""
        return {}

    def pipeline_kwargs(self, model, cls) -> dict:
        import inspect

        names = set(inspect.signature(cls.__init__).parameters) - {"self"}
        parts = {**model.parts, "scheduler": model.fresh_scheduler()}
        kw = {k: parts.get(k) for k in names if k in parts or k in _OPTIONAL_NONE}
        if "requires_safety_checker" in names:
            kw["requires_safety_checker"] = False
        kw.update({k: v for k, v in model.options.items() if k in names})
        return kw


_OPTIONAL_NONE = {"safety_checker", "feature_extractor", "image_encoder", "tokenizer",
                  "text_encoder", "tokenizer_2", "text_encoder_2"}  # fmt: skip
