"""Stage ``vae``: the autoencoder (L1 + MSE + a small KL), latents scaled to unit variance."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from genie_plugin.embedded.training.common import (
    Log,
    TrainConfig,
    autocast,
    cosine_lr,
    plan_steps,
    progress,
    save_ckpt,
)
from genie_plugin.embedded.training.models import build_models, latent_modes
from genie_plugin.io import atomic_write_text


def stage_vae(work: Path, cfg: TrainConfig, log: Log, device, x_all: torch.Tensor) -> None:
    if (work / "vae.done").exists():
        return
    vae, _, _ = build_models(600, cfg.seed)
    vae.to(device).train()
    opt = torch.optim.AdamW(vae.parameters(), lr=1e-3, weight_decay=0.0)
    rng = torch.Generator().manual_seed(cfg.seed + 1)

    def vae_loss(model, rng):
        idx = torch.randint(0, len(x_all), (cfg.vae_batch,), generator=rng)
        xb = x_all[idx].to(device)
        with autocast(device):
            post = model.encode(xb).latent_dist
            z = post.mean + post.std * torch.randn(post.mean.shape, generator=rng).to(device)
            rec = model.decode(z).sample.float()
        loss_rec = F.l1_loss(rec, xb) + F.mse_loss(rec, xb)
        return loss_rec, loss_rec + 1e-6 * post.kl().mean()

    def timing_step(_m=[]):  # noqa: B006 - throwaway copy built once
        if not _m:
            import copy

            m = copy.deepcopy(vae)
            _m += [m, torch.optim.AdamW(m.parameters(), lr=1e-4), torch.Generator().manual_seed(9)]
        m, o, gg = _m
        o.zero_grad(set_to_none=True)
        vae_loss(m, gg)[1].backward()
        o.step()

    total = plan_steps(work, "vae", cfg.vae_steps, cfg.vae_minutes, timing_step, device)
    lr = cosine_lr(opt, total, warmup=50)
    start = 0
    ck = work / "vae.ckpt"
    if ck.exists():
        st = torch.load(ck, map_location="cpu", weights_only=False)
        vae.load_state_dict(st["vae"])
        opt.load_state_dict(st["opt"])
        lr.load_state_dict(st["lr"])
        rng.set_state(st["rng"])
        start = st["step"]
    p, task = progress(total, "vae", start)
    with p:
        for step in range(start, total):
            loss_rec, loss = vae_loss(vae, rng)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            lr.step()
            p.update(task, advance=1, info=f"rec {loss_rec.item():.4f}")
            if (step + 1) % 20 == 0:
                log(stage="vae", step=step + 1, rec=round(loss_rec.item(), 5))
            if (step + 1) % cfg.ckpt_every == 0 or step + 1 == total:
                save_ckpt(
                    ck,
                    {
                        "vae": vae.state_dict(),
                        "opt": opt.state_dict(),
                        "lr": lr.state_dict(),
                        "rng": rng.get_state(),
                        "step": step + 1,
                    },
                )
    # SD's convention: scale latents to unit variance (SD 1.x uses 0.18215).
    vae.eval()
    mus = latent_modes(vae, x_all, device)
    vae.register_to_config(scaling_factor=float(1.0 / mus.std()))
    save_ckpt(
        work / "vae.pt",
        {"vae": vae.state_dict(), "scaling_factor": vae.config.scaling_factor, "steps": total},
    )
    log(stage="vae", scaling_factor=vae.config.scaling_factor)
    atomic_write_text(work / "vae.done", "ok\n")


def reuse_vae(work: Path, model_dir: Path) -> None:
    """Take the VAE of an exported model instead of training one (second training phase)."""
    from diffusers import AutoencoderKL

    if (work / "vae.done").exists():
        return
    vae = AutoencoderKL.from_pretrained(model_dir / "vae")
    save_ckpt(
        work / "vae.pt",
        {"vae": vae.state_dict(), "scaling_factor": vae.config.scaling_factor, "steps": None},
    )
    atomic_write_text(work / "vae.done", f"reused from {model_dir}\n")
