"""The loaded model: SD components, the sampler settings they run with, and the UNet backend.

A ``DiffusionGenerator`` is frozen: ``with_sampler``/``with_backend`` return new views that
share the same modules and the same per-model helpers (:class:`ModelHelpers`: the fp32 VAE copy
made on the first fp16 overflow, counters), so a view made per render costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from genie_plugin.backends import REGISTRY
from genie_plugin.backends import backend as backend_record
from genie_plugin.diffusion.settings import SamplerConfig

#: UNet backends and what each is (the records: :mod:`.backends`).
BACKENDS: dict[str, str] = {name: b.description for name, b in REGISTRY.items()}


def check_backend(name: str) -> str:
    backend_record(name)  # one line listing the choices for an unknown name
    return name


def describe_model(
    name: str, fingerprint: str, sampler: SamplerConfig, backend: str, adapters: tuple = ()
) -> dict:
    """A model as rows and manifests record it (loaded or not: :mod:`.lazy`)."""
    d = {"model": name, "fingerprint": fingerprint, **sampler.to_dict()}
    if backend != "torch":
        d["backend"] = backend
    if adapters:
        d["adapters"] = [dict(a) for a in adapters]
    return d


@dataclass(eq=False)
class ModelHelpers:
    """Per-model state that every view of a loaded model shares (made once per model)."""

    stats: dict = field(default_factory=dict)  # vae_fp32_reruns, channels_last
    _fp32: tuple[Any, Any] | None = field(default=None, repr=False)
    #: diffusers pipelines over the same modules, for their helper methods (families.base)
    pipelines: dict = field(default_factory=dict, repr=False)

    def fp32_vae(self, vae):
        """An fp32 copy of ``vae``, made on the first call (an fp16 overflow) and kept."""
        import copy

        if self._fp32 is None or self._fp32[0] is not vae:
            self._fp32 = (vae, copy.deepcopy(vae).float())
        return self._fp32[1]


@dataclass(frozen=True, eq=False)
class DiffusionGenerator:
    """Loaded components of one model family plus the sampler settings and the backend used to
    run them.

    Runtime object (holds modules); describe it in manifests with ``fingerprint``/``describe``.
    ``unet`` is the denoising network (a UNet, or SD3's/Flux's transformer); ``parts`` holds
    every component by its folder name (``text_encoder_2``, ``tokenizer_3``...), ``options``
    the pipeline settings of ``model_index.json`` that change images, ``family`` the
    :mod:`~genie_plugin.diffusion.families` name.
    """

    name: str
    fingerprint: str
    tokenizer: Any
    text_encoder: Any
    vae: Any
    unet: Any
    scheduler_config: Any
    device: Any
    dtype: Any
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    backend: str = "torch"  # see BACKENDS
    denoiser: Any = field(default=None, repr=False)
    helpers: ModelHelpers = field(default_factory=ModelHelpers, repr=False)
    family: str = "sd"
    parts: dict = field(default_factory=dict, repr=False)
    options: dict = field(default_factory=dict)
    #: LoRAs fused into the modules (:mod:`.adapters`): their records, in order
    adapters: tuple = ()

    def __post_init__(self) -> None:
        if not self.parts:  # made from the four SD modules (tests, older callers)
            object.__setattr__(self, "parts", {
                "tokenizer": self.tokenizer, "text_encoder": self.text_encoder,
                "vae": self.vae, self.adapter.network: self.unet,
            })  # fmt: skip

    @property
    def adapter(self):
        """The :class:`~genie_plugin.diffusion.families.base.ModelFamily` this model is."""
        from genie_plugin.diffusion.families import family

        return family(self.family)

    @property
    def guidance_embedded(self) -> bool:
        """Guidance is a network input (LCM): no unconditional rows."""
        return self.adapter.network_embeds_guidance(self.unet)

    @property
    def stats(self) -> dict:
        return self.helpers.stats

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def native_resolution(self) -> int:
        return self.adapter.native_resolution(self)

    @property
    def resolution(self) -> int:
        return int(self.sampler.resolution or self.native_resolution)

    def fresh_scheduler(self):
        """A new diffusers scheduler of the run's kind and spacing, from the model's config."""
        from genie_plugin.diffusion.schedulers import make_scheduler

        cfg = self.sampler
        return make_scheduler(cfg.scheduler, self.scheduler_config, cfg.timestep_spacing)

    def with_sampler(self, **changes: Any) -> DiffusionGenerator:
        """A view of the same modules with other sampler settings (no reload)."""
        return replace(self, sampler=replace(self.sampler, **changes))

    def describe(self) -> dict:
        return describe_model(
            self.name, self.fingerprint, self.sampler, self.backend, self.adapters
        )

    def with_backend(self, backend: str, **options: Any) -> DiffusionGenerator:
        """The same model with its UNet call on another backend (see :data:`BACKENDS`)."""
        check_backend(backend)
        if backend == "auto":  # resolved to a real backend here: never recorded as "auto"
            from genie_plugin.diffusion.auto import choose_backend

            choice = choose_backend(self)
            opts = options if choice.backend.startswith("onnx") else {}
            gen = self.with_backend(choice.backend, **opts)
            gen.stats["backend_choice"] = choice.summary()
            return gen
        return replace(
            self, backend=backend, denoiser=backend_record(backend).denoiser(self, options)
        )

    def use_channels_last(self) -> DiffusionGenerator:
        """Convert UNet and VAE to channels-last in place (NHWC convolutions on tensor cores).

        Why in place: every view of this generator shares the modules. Outputs agree with
        NCHW to rounding; worth it on GPUs, neutral to slower on CPUs.
        """
        import torch

        for m in (self.unet, self.vae):
            m.to(memory_format=torch.channels_last)
        self.stats["channels_last"] = True
        return self

    def generate(self, items, *, max_batch: int = 16, progress=None, denoiser=None):
        from genie_plugin.diffusion.sampler import sample

        return sample(self, items, max_batch=max_batch, progress=progress, denoiser=denoiser)
