"""Textual inversion (Gal et al. 2022) on a loaded SD 1.x/2.x or SDXL model: one word embedding per
concept, learned with the diffusion loss on a few images, everything else frozen.

As diffusers' ``examples/textual_inversion``: the token rows of the text encoder's input
embeddings are trained with AdamW, and every other row is restored after each step. The
training tokens are reused slots (``<genie-fit-slot-i>``, added once per model), so a run of
many episodes does not grow the vocabulary; the learned vectors leave as plain tensors and are
named by their content (:mod:`.tokens`). All randomness (which image, timestep, noise) comes
from the caller's generator.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from genie_plugin.errors import ConfigError


@dataclass(frozen=True)
class FitCost:
    """What a fit cost: optimizer steps, wall seconds and FLOPs (forward + backward, counted
    by torch's FlopCounterMode on the first step)."""

    steps: int
    seconds: float
    flops: int


def training_batch(sched, x0, generator: torch.Generator):
    """One diffusion-loss batch for clean latents ``x0``: (noisy latents, timesteps, target),
    the noise and timesteps drawn from ``generator``; the target is the noise (ε models) or
    the velocity (v models), as the scheduler's config says."""
    noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
    t = torch.randint(sched.config.num_train_timesteps, (len(x0),), generator=generator)
    t = t.to(x0.device)
    noisy = sched.add_noise(x0, noise, t)
    v = sched.config.get("prediction_type", "epsilon") == "v_prediction"
    return noisy, t, sched.get_velocity(x0, noise, t) if v else noise


def encoder_pairs(model) -> list[tuple]:
    """The (tokenizer, text encoder) pairs a learned word lives in: SD's one; SDXL's two (the
    refiner's second only). A word's vector is their rows concatenated, in this order."""
    if model.family == "sd":
        return [(model.tokenizer, model.text_encoder)]
    if model.family == "sdxl":
        p = model.parts
        pairs = [(p["tokenizer"], p["text_encoder"])] if p.get("text_encoder") is not None else []
        return [*pairs, (p["tokenizer_2"], p["text_encoder_2"])]
    raise ConfigError(
        f"textual inversion runs on SD 1.x/2.x and SDXL (CLIP text encoders); {model.family!r} "
        "encodes prompts with T5 as well and is not fitted here yet"
    )


def _slots(tok, te, n: int) -> list[int]:
    names = [f"<genie-fit-slot-{i}>" for i in range(n)]
    missing = [t for t in names if t not in tok.get_vocab()]
    if missing:
        tok.add_tokens(missing)
        # resizing initialises the new rows from the global RNG: isolated (they are
        # overwritten before use)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            te.resize_token_embeddings(len(tok), mean_resizing=False)
    return [tok.convert_tokens_to_ids(t) for t in names]


def textual_inversion(
    model,
    images: Sequence[Sequence],
    *,
    prompt: str,
    init_text: str,
    steps: int,
    lr: float,
    generator: torch.Generator,
) -> tuple[list[torch.Tensor], FitCost]:
    """One learned vector per entry of ``images`` (lists of PIL images), trained jointly:
    each step takes one image of every concept. ``prompt`` has ``{name}`` where the token goes.
    SDXL trains the word's rows in both text encoders, through the family's own prompt
    encoding (diffusers' ``encode_prompt``: penultimate states, pooled, time ids)."""
    from diffusers import DDPMScheduler
    from torch.utils.flop_counter import FlopCounterMode

    from genie_plugin.diffusion.conditioning import Conditioning

    pairs = encoder_pairs(model)
    if not images or any(not ims for ims in images):
        raise ConfigError("textual inversion needs at least one image per concept")
    if steps < 1:
        raise ConfigError(f"fit steps must be >= 1, got {steps}")
    t0 = time.perf_counter()
    fam, unet = model.adapter, model.unet
    slots, embs, keeps, masks = [], [], [], []
    for tok, te in pairs:
        ids = _slots(tok, te, len(images))
        emb = te.get_input_embeddings()
        init_ids = tok(init_text, add_special_tokens=False).input_ids
        if not init_ids:
            raise ConfigError(f"init token {init_text!r} encodes to no token")
        with torch.no_grad():
            init = emb.weight[init_ids].mean(0)
            for i in ids:
                emb.weight[i] = init
        keep = emb.weight.detach().clone()
        trained = torch.zeros(len(keep), dtype=torch.bool)
        trained[ids] = True
        slots.append(ids)
        embs.append(emb)
        keeps.append(keep)
        masks.append(trained)
    with torch.no_grad():
        lat = [fam.encode_images(model, list(ims)) for ims in images]
    sched = DDPMScheduler.from_config(model.scheduler_config)  # the training noise, as diffusers'
    texts = [prompt.format(name=f"<genie-fit-slot-{i}>") for i in range(len(images))]
    if model.family == "sd":  # as the committed boards were fitted: the last hidden state
        tok0 = pairs[0][0]
        ids0 = tok0(texts, padding="max_length", max_length=tok0.model_max_length,
                    truncation=True, return_tensors="pt").input_ids.to(model.device)  # fmt: skip

        def condition():
            return Conditioning(text=pairs[0][1](ids0)[0].to(model.dtype))
    else:

        def condition():
            return fam.encode_prompts(model, texts)

    modules = [te for _, te in pairs] + [unet]
    was = [m.training for m in modules]
    params = [p for m in modules for p in m.parameters()]
    req = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    for emb in embs:
        emb.weight.requires_grad_(True)
    for m in modules:
        m.eval()
    opt = torch.optim.AdamW([emb.weight for emb in embs], lr=lr, weight_decay=0.0)
    flops = 0
    try:
        for step in range(steps):
            pick = [int(torch.randint(len(x), (1,), generator=generator)) for x in lat]
            x0 = torch.cat([x[k : k + 1] for x, k in zip(lat, pick, strict=True)]).to(model.dtype)
            noisy, t, target = training_batch(sched, x0, generator)
            opt.zero_grad(set_to_none=True)
            # the first step's FLOPs counted exactly (forward and backward); every step is the
            # same work
            with FlopCounterMode(display=False) if step == 0 else contextlib.nullcontext() as fc:
                pred = fam.forward(unet, noisy, t, condition())
                torch.nn.functional.mse_loss(pred.float(), target.float()).backward()
            if step == 0:
                flops = int(fc.get_total_flops())
            for emb, trained in zip(embs, masks, strict=True):
                emb.weight.grad[~trained] = 0
            opt.step()
            with torch.no_grad():  # only the slots learn
                for emb, keep, trained in zip(embs, keeps, masks, strict=True):
                    emb.weight[~trained] = keep[~trained]
    finally:
        for emb in embs:
            emb.weight.requires_grad_(False)
        for p, r in zip(params, req, strict=True):
            p.requires_grad_(r)
        for m, w in zip(modules, was, strict=True):
            m.train(w)
    vectors = [
        torch.cat([emb.weight[ids[c]].detach().to("cpu", torch.float32) for emb, ids in
                   zip(embs, slots, strict=True)])
        for c in range(len(images))
    ]  # fmt: skip
    return vectors, FitCost(steps=steps, seconds=time.perf_counter() - t0, flops=flops * steps)
