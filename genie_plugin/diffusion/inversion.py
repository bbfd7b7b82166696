"""Textual inversion (Gal et al. 2022) on a loaded SD-family model: one word embedding per
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


def _slots(model, n: int) -> list[int]:
    names = [f"<genie-fit-slot-{i}>" for i in range(n)]
    tok = model.tokenizer
    missing = [t for t in names if t not in tok.get_vocab()]
    if missing:
        tok.add_tokens(missing)
        # resizing initialises the new rows from the global RNG: isolated (they are
        # overwritten before use)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model.text_encoder.resize_token_embeddings(len(tok), mean_resizing=False)
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
    each step takes one image of every concept. ``prompt`` has ``{name}`` where the token goes."""
    from diffusers import DDPMScheduler
    from torch.utils.flop_counter import FlopCounterMode

    from genie_plugin.diffusion.codecs import encode_images

    if model.family != "sd":
        raise ConfigError(f"textual inversion runs on the SD 1.x/2.x family, not {model.family!r}")
    if not images or any(not ims for ims in images):
        raise ConfigError("textual inversion needs at least one image per concept")
    if steps < 1:
        raise ConfigError(f"fit steps must be >= 1, got {steps}")
    t0 = time.perf_counter()
    te, unet = model.text_encoder, model.unet
    ids = _slots(model, len(images))
    emb = te.get_input_embeddings()
    init_ids = model.tokenizer(init_text, add_special_tokens=False).input_ids
    if not init_ids:
        raise ConfigError(f"init token {init_text!r} encodes to no token")
    with torch.no_grad():
        init = emb.weight[init_ids].mean(0)
        for i in ids:
            emb.weight[i] = init
    keep = emb.weight.detach().clone()
    trained = torch.zeros(len(keep), dtype=torch.bool)
    trained[ids] = True
    with torch.no_grad():
        lat = [encode_images(model, list(ims)) for ims in images]
    sched = DDPMScheduler.from_config(model.scheduler_config)  # the training noise, as diffusers'

    pred_type = sched.config.get("prediction_type", "epsilon")
    texts = [prompt.format(name=f"<genie-fit-slot-{i}>") for i in range(len(images))]
    tok = model.tokenizer(texts, padding="max_length", max_length=model.tokenizer.model_max_length,
                          truncation=True, return_tensors="pt").input_ids.to(model.device)  # fmt: skip
    was = [m.training for m in (te, unet)]
    req = [p.requires_grad for p in (*te.parameters(), *unet.parameters())]
    for p in te.parameters():
        p.requires_grad_(False)
    for p in unet.parameters():
        p.requires_grad_(False)
    emb.weight.requires_grad_(True)
    te.eval()
    unet.eval()
    opt = torch.optim.AdamW([emb.weight], lr=lr, weight_decay=0.0)
    flops = 0
    try:
        for step in range(steps):
            pick = [int(torch.randint(len(x), (1,), generator=generator)) for x in lat]
            x0 = torch.cat([x[k : k + 1] for x, k in zip(lat, pick, strict=True)]).to(model.dtype)
            noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
            t = torch.randint(sched.config.num_train_timesteps, (len(x0),), generator=generator)
            t = t.to(x0.device)
            noisy = sched.add_noise(x0, noise, t)
            target = sched.get_velocity(x0, noise, t) if pred_type == "v_prediction" else noise

            opt.zero_grad(set_to_none=True)
            # the first step's FLOPs counted exactly (forward and backward); every step is the
            # same work
            with FlopCounterMode(display=False) if step == 0 else contextlib.nullcontext() as fc:
                cond = te(tok)[0].to(model.dtype)
                pred = unet(noisy, t, encoder_hidden_states=cond).sample
                torch.nn.functional.mse_loss(pred.float(), target.float()).backward()
            if step == 0:
                flops = int(fc.get_total_flops())
            emb.weight.grad[~trained] = 0
            opt.step()
            with torch.no_grad():  # only the slots learn
                emb.weight[~trained] = keep[~trained]
    finally:
        emb.weight.requires_grad_(False)
        for p, r in zip((*te.parameters(), *unet.parameters()), req, strict=True):
            p.requires_grad_(r)
        te.train(was[0])
        unet.train(was[1])
    vectors = [emb.weight[i].detach().to("cpu", torch.float32).clone() for i in ids]
    return vectors, FitCost(steps=steps, seconds=time.perf_counter() - t0, flops=flops * steps)
