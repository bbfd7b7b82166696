"""Stage ``unet``: the UNet and the text encoder, trained together on the VAE's latents.

On diffusers' training utilities: ``EMAModel`` (decay min(decay, (1 + n)/(10 + n))),
``compute_snr`` for min-SNR-γ loss weights (Hang et al. 2023), and
``get_cosine_schedule_with_warmup``. Checkpoints are one atomic ``torch.save`` of every state
(model, optimizer, LR schedule, EMA, the batch RNG): a kill mid-save leaves the previous one,
which accelerate's ``save_state`` (a folder written file by file) does not promise.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import numpy as np
import torch

from genie_plugin.core.prompts import DEFAULT_PROMPT, class_prompt
from genie_plugin.embedded import shapes
from genie_plugin.embedded.training.common import (
    Log,
    TrainConfig,
    autocast,
    cosine_lr,
    plan_steps,
    progress,
    save_ckpt,
)
from genie_plugin.embedded.training.models import build_models, latent_modes, noise_scheduler
from genie_plugin.io import atomic_write_text


def _latents(work: Path, cfg: TrainConfig, tokenizer, x_all: torch.Tensor, device):
    vae, _, _ = build_models(len(tokenizer), cfg.seed)
    st = torch.load(work / "vae.pt", map_location="cpu", weights_only=False)
    vae.load_state_dict(st["vae"])
    vae.register_to_config(scaling_factor=st["scaling_factor"])
    vae.to(device).eval()
    return (latent_modes(vae, x_all, device) * vae.config.scaling_factor).cpu()


def stage_unet(
    work: Path,
    cfg: TrainConfig,
    log: Log,
    device,
    x_all: torch.Tensor,
    y_all: np.ndarray,
    tokenizer,
    init_from: Path | None = None,
) -> None:
    from diffusers.training_utils import EMAModel, compute_snr

    if (work / "unet.done").exists():
        return
    _, unet, te = build_models(len(tokenizer), cfg.seed)
    lat = _latents(work, cfg, tokenizer, x_all, device)
    captions = [class_prompt(DEFAULT_PROMPT, c) for c in shapes.CLASSES]
    ids = tokenizer(
        captions + [""],
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids
    empty_id = len(captions)
    sched = noise_scheduler()
    labels = torch.from_numpy(y_all)
    ck = work / "unet.ckpt"
    if init_from is not None and not ck.exists():
        # warm start (a second training phase): the exported fp16 weights, upcast
        from diffusers import UNet2DConditionModel
        from transformers import CLIPTextModel

        unet.load_state_dict(UNet2DConditionModel.from_pretrained(init_from / "unet").state_dict())
        te.load_state_dict(CLIPTextModel.from_pretrained(init_from / "text_encoder").state_dict())
        unet.float()
        te.float()
        log(stage="unet", init_from=str(init_from))
    unet.to(device).train()
    te.to(device).train()

    def loss_of(u, enc, rng):
        idx = torch.randint(0, len(lat), (cfg.unet_batch,), generator=rng)
        z0 = lat[idx]
        cap = labels[idx].clone()
        cap[torch.rand(len(idx), generator=rng) < cfg.empty_caption_p] = empty_id
        noise = torch.randn(z0.shape, generator=rng)
        t = torch.randint(0, sched.config.num_train_timesteps, (len(idx),), generator=rng)
        zt = sched.add_noise(z0, noise, t)
        with autocast(device):
            text_rows = enc(ids[cap].to(device))[0]
            pred = u(zt.to(device), t.to(device), encoder_hidden_states=text_rows).sample.float()
        snr = compute_snr(sched, t)
        w = (torch.clamp(snr, max=cfg.min_snr_gamma) / snr).to(device)
        return (w * ((pred - noise.to(device)) ** 2).mean(dim=(1, 2, 3))).mean()

    def one_step(u, enc, params, opt, ema, rng):
        loss = loss_of(u, enc, rng)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema.step(params)
        return loss

    def timing_step(_m=[]):  # noqa: B006 - throwaway copies built once
        if not _m:
            u, enc = copy.deepcopy(unet), copy.deepcopy(te)
            ps = list(u.parameters()) + list(enc.parameters())
            _m += [u, enc, ps, torch.optim.AdamW(ps, lr=1e-5), EMAModel(ps)]
            _m.append(torch.Generator().manual_seed(9))
        one_step(*_m)

    total = plan_steps(work, "unet", cfg.unet_steps, cfg.unet_max_minutes, timing_step, device)
    params = list(unet.parameters()) + list(te.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.unet_lr, weight_decay=0.01)
    lr = cosine_lr(opt, total, warmup=200)
    ema = EMAModel(params, decay=cfg.ema_decay)
    rng = torch.Generator().manual_seed(cfg.seed + 2)
    start, elapsed_before = 0, 0.0
    if ck.exists():
        s = torch.load(ck, map_location="cpu", weights_only=False)
        unet.load_state_dict(s["unet"])
        te.load_state_dict(s["te"])
        opt.load_state_dict(s["opt"])
        lr.load_state_dict(s["lr"])
        ema.load_state_dict(s["ema"])
        rng.set_state(s["rng"])
        start, elapsed_before = s["step"], s.get("elapsed", 0.0)
    ema.to(device)
    t0 = time.time()
    step = start

    def checkpoint() -> None:
        state = {"unet": unet.state_dict(), "te": te.state_dict(), "opt": opt.state_dict()}
        state.update(lr=lr.state_dict(), ema=ema.state_dict(), rng=rng.get_state(), step=step)
        save_ckpt(ck, {**state, "elapsed": elapsed_before + time.time() - t0})

    bar, task = progress(total, "unet", start)
    with bar:
        while step < total:
            elapsed = elapsed_before + time.time() - t0
            if cfg.unet_steps > 0 and elapsed > cfg.unet_max_minutes * 60:
                log(stage="unet", stopped_early_at=step, minutes=round(elapsed / 60, 1))
                break
            loss = one_step(unet, te, params, opt, ema, rng)
            lr.step()
            step += 1
            if step % 20 == 0:
                bar.update(task, completed=step, info=f"loss {loss.item():.4f}")
                log(stage="unet", step=step, loss=round(loss.item(), 5), lr=lr.get_last_lr()[0])
            if step % cfg.ckpt_every == 0 or step == total:
                checkpoint()
    checkpoint()
    ema.copy_to(params)  # the weights that ship are the EMA's
    save_ckpt(
        work / "unet.pt",
        {
            "unet": unet.state_dict(),
            "te": te.state_dict(),
            "step": step,
            "planned": total,
            "minutes": round((elapsed_before + time.time() - t0) / 60, 1),
        },
    )
    atomic_write_text(work / "unet.done", json.dumps({"steps": step}) + "\n")
