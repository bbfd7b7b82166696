"""A LoRA fitted on one episode's support images (DataDream's fit; SD 1.x/2.x and SDXL), and the model view that
generates with it.

The adapter is trained through ``peft`` (diffusers' ``add_adapter`` on the UNet's attention
projections) with the diffusion loss on the episode's images under their class prompts; its
weights leave as a plain state dict, stored content-addressed by the caller.

Generating with it goes through :class:`AdaptedModel`, a model view whose fingerprint is the
base's plus the adapter's digest — so every cache key of an adapted image differs from the
base model's and from every other episode's adapter — and which applies the adapter to the
UNet only for the duration of a sampler call. It runs on the torch backend only: an ONNX graph,
a compiled or CUDA-graph-captured UNet holds the base weights, and running an adapted request
through one would silently give the base model's images, so it is refused.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence

import torch

from genie_plugin.errors import ConfigError

ADAPTER = "genie-episode"  # the one adapter slot of the UNet that episode fits load into


def lora_config(rank: int) -> dict:
    return {"r": int(rank), "lora_alpha": int(rank), "init_lora_weights": "gaussian",
            "target_modules": ["to_q", "to_k", "to_v", "to_out.0"]}  # fmt: skip


def _ensure_slot(unet, config: dict, seed: int) -> None:
    from peft import LoraConfig

    have = getattr(unet, "peft_config", {}) or {}
    if ADAPTER in have:
        if int(have[ADAPTER].r) != int(config["r"]):
            unet.delete_adapters(ADAPTER)
        else:
            return
    with torch.random.fork_rng(devices=[]):  # LoRA init draws: seeded, isolated
        torch.manual_seed(seed)
        unet.add_adapter(LoraConfig(**config), adapter_name=ADAPTER)


@contextlib.contextmanager
def applied(unet, state: dict, config: dict):
    """The UNet with ``state`` in its episode adapter, for the duration of the block."""
    from peft.utils import set_peft_model_state_dict

    _ensure_slot(unet, config, 0)
    set_peft_model_state_dict(unet, state, adapter_name=ADAPTER)
    unet.set_adapter(ADAPTER)
    unet.enable_adapters()
    try:
        yield unet
    finally:
        unet.disable_adapters()


def fit_lora(
    model,
    images: Sequence[tuple],
    *,
    rank: int,
    steps: int,
    lr: float,
    generator: torch.Generator,
    seed: int,
):
    """A LoRA on ``model``'s UNet from ``images`` = [(PIL image, prompt)]; returns (state dict
    of CPU tensors, config, FitCost)."""
    from diffusers import DDPMScheduler
    from peft.utils import get_peft_model_state_dict
    from torch.utils.flop_counter import FlopCounterMode

    from genie_plugin.diffusion.conditioning import Conditioning
    from genie_plugin.diffusion.inversion import FitCost, training_batch

    fam = model.adapter
    if fam.flow or fam.network != "unet":
        raise ConfigError(
            f"an episode LoRA is fitted with the ε/v diffusion loss on a UNet (SD 1.x/2.x, "
            f"SDXL); {fam.title} is a flow-matching transformer, not fitted here yet"
        )
    if not images or steps < 1:
        raise ConfigError("a LoRA fit needs images and at least one step")
    t0 = time.perf_counter()
    unet = model.unet
    config = lora_config(rank)
    if ADAPTER in (getattr(unet, "peft_config", {}) or {}):
        unet.delete_adapters(ADAPTER)  # a fresh init for every fit, from its own seed
    _ensure_slot(unet, config, seed)
    unet.set_adapter(ADAPTER)
    unet.enable_adapters()
    with torch.no_grad():  # the family's own codec and prompt encoding (SDXL: pooled, ids)
        lat = fam.encode_images(model, [im for im, _ in images])
        cond = fam.encode_prompts(model, [p for _, p in images])
    sched = DDPMScheduler.from_config(model.scheduler_config)
    req = [p.requires_grad for p in unet.parameters()]
    train = [p for n, p in unet.named_parameters() if "lora_" in n]
    for p in unet.parameters():
        p.requires_grad_(False)
    for p in train:
        p.requires_grad_(True)
    was = unet.training
    unet.eval()
    opt = torch.optim.AdamW(train, lr=lr, weight_decay=0.0)
    flops = 0
    try:
        for step in range(steps):
            k = torch.randint(len(lat), (min(4, len(lat)),), generator=generator)
            x0 = lat[k].to(model.dtype)
            c = Conditioning({n: cond[n][k] for n in cond})
            noisy, t, target = training_batch(sched, x0, generator)
            opt.zero_grad(set_to_none=True)
            with FlopCounterMode(display=False) if step == 0 else contextlib.nullcontext() as fc:
                pred = fam.forward(unet, noisy, t, c)
                torch.nn.functional.mse_loss(pred.float(), target.float()).backward()
            if step == 0:
                flops = int(fc.get_total_flops())
            opt.step()
        state = {k: v.detach().to("cpu", torch.float32).clone()
                 for k, v in get_peft_model_state_dict(unet, adapter_name=ADAPTER).items()}  # fmt: skip
    finally:
        for p, r in zip(unet.parameters(), req, strict=False):
            p.requires_grad_(r)
        unet.disable_adapters()
        unet.train(was)
    return (
        state,
        config,
        FitCost(steps=steps, seconds=time.perf_counter() - t0, flops=flops * steps),
    )


class AdaptedModel:
    """A model view: ``base`` with an episode's LoRA (see the module docstring)."""

    def __init__(self, base, state: dict, config: dict, digest: str) -> None:
        if getattr(base, "backend", "torch") != "torch":
            raise ConfigError(
                f"an episode's LoRA cannot run on the {base.backend!r} backend: its graph holds "
                "the base weights and would silently give the base model's images; use "
                "--backend torch for strategies that fit a LoRA (datadream)"
            )
        self.base, self.state, self.config, self.digest = base, state, config, digest

    # -- the ModelView protocol, the adapter in the fingerprint ----------------------------
    @property
    def fingerprint(self) -> str:
        return f"{self.base.fingerprint}+episode-lora:{self.digest}"

    name = property(lambda self: self.base.name)
    family = property(lambda self: self.base.family)
    guidance_embedded = property(lambda self: self.base.guidance_embedded)
    sampler = property(lambda self: self.base.sampler)
    scheduler_config = property(lambda self: self.base.scheduler_config)
    device = property(lambda self: self.base.device)
    resolution = property(lambda self: self.base.resolution)
    # what generation keys read of the backend (diffusion.key.generation_key_facts)
    backend = property(lambda self: self.base.backend)
    denoiser = property(lambda self: getattr(self.base, "denoiser", None))
    dtype = property(lambda self: self.base.dtype)
    stats = property(lambda self: self.base.stats)

    def describe(self) -> dict:
        return {**self.base.describe(), "episode_lora": self.digest}

    def with_sampler(self, **changes) -> AdaptedModel:
        return AdaptedModel(self.base.with_sampler(**changes), self.state, self.config, self.digest)

    def generate(self, items, *, max_batch: int = 16, progress=None, denoiser=None):
        from genie_plugin.diffusion.lazy import loaded_model

        model = loaded_model(self.base)
        with applied(model.unet, self.state, self.config):
            return model.generate(items, max_batch=max_batch, progress=progress, denoiser=denoiser)
