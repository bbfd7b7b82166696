"""Train the embedded default: VAE, text encoder + UNet, few-shot backbone and oracle.

Reproducible from a seed (all sampling through explicit generators), resumable (each stage
checkpoints atomically and a finished stage is skipped), logs losses to ``log.jsonl`` and shows
a progress bar. Sized for 2 CPU cores in about an hour; ``--device cuda`` for minutes on a GPU.

Stages (artifacts in ``work_dir``): ``classifiers`` (backbone on base classes of the fewshot
pool; oracle on all classes of the generator pool), ``vae``, ``unet`` (with the CLIP text
encoder), ``export`` (diffusers folder + weights into ``out_dir``).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from genie_plugin.embedded import shapes
from genie_plugin.io import atomic_write_bytes, atomic_write_text

CAPTION = "a photo of a {name}."


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    seed: int = 0
    gen_images_per_class: int = 200  # generator pool (diffusion model + oracle)
    fewshot_images_per_class: int = 120  # benchmark pool (backbone: base classes only)
    vae_steps: int = 1200  # 0 = as many as fit in vae_minutes (timed on this device)
    vae_minutes: float = 2.0
    vae_batch: int = 64
    unet_steps: int = 5000  # 0 = as many as fit in unet_max_minutes (timed on this device)
    unet_batch: int = 64
    unet_lr: float = 3e-4
    unet_max_minutes: float = 55.0  # stop early (and export) if the budget runs out
    empty_caption_p: float = 0.1  # caption dropout for classifier-free guidance
    min_snr_gamma: float = 5.0
    ema_decay: float = 0.999
    clf_epochs: int = 30
    clf_image_size: int = 64
    backbone_arch: str = "regnetx_002"
    ckpt_every: int = 250


# ----------------------------------------------------------------------------- models
def vocab_words() -> tuple[str, ...]:
    words = {"a", "photo", "of"}
    for name in shapes.CLASSES:
        words.update(name.replace("_", " ").split())
    return tuple(sorted(words))


def build_tokenizer(folder: Path):
    from transformers import CLIPTokenizer

    from genie_plugin.diffusion.tiny import write_char_tokenizer

    write_char_tokenizer(folder, vocab_words(), max_length=16)
    return CLIPTokenizer.from_pretrained(folder)


def build_models(vocab_size: int, seed: int):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 3,
            up_block_types=("UpDecoderBlock2D",) * 3,
            block_out_channels=(16, 32, 64),
            layers_per_block=1,
            latent_channels=4,
            norm_num_groups=16,
            sample_size=shapes.IMAGE_SIZE,
        )
        unet = UNet2DConditionModel(
            sample_size=shapes.IMAGE_SIZE // 4,
            in_channels=4,
            out_channels=4,
            block_out_channels=(64, 128, 192),
            layers_per_block=1,
            down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=64,
            attention_head_dim=8,
            norm_num_groups=16,
        )
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=vocab_size,
                bos_token_id=vocab_size - 2,
                eos_token_id=vocab_size - 1,
                pad_token_id=vocab_size - 1,
                hidden_size=64,
                intermediate_size=128,
                num_attention_heads=4,
                num_hidden_layers=2,
                max_position_embeddings=16,
            )
        )
    return vae, unet, text_encoder


def noise_scheduler():
    from diffusers import DDPMScheduler

    # SD 1.x's training schedule (scaled-linear betas, 1000 steps, epsilon prediction).
    return DDPMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000
    )


def build_classifier(arch: str, num_classes: int, seed: int):
    import timm

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return timm.create_model(arch, pretrained=False, num_classes=num_classes)


# ----------------------------------------------------------------------------- helpers
def autocast(device):
    """bf16 autocast on CUDA (the small nets are launch-bound there); plain fp32 on CPU."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=torch.device(device).type == "cuda")


@torch.no_grad()
def ema_update(ema_u: dict, unet, ema_t: dict, te, decay: float) -> None:
    """EMA of float tensors with one fused foreach call per model (buffers are copied)."""
    for ema, mod in ((ema_u, unet), (ema_t, te)):
        sd = mod.state_dict()
        fl = [k for k, v in sd.items() if v.dtype.is_floating_point]
        torch._foreach_lerp_([ema[k] for k in fl], [sd[k].detach() for k in fl], 1 - decay)
        for k, v in sd.items():
            if not v.dtype.is_floating_point:
                ema[k].copy_(v)


class Log:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, **rec) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"time": round(time.time(), 1), **rec}, sort_keys=True) + "\n")


def plan_steps(work: Path, name: str, requested: int, minutes: float, step_fn, device) -> int:
    """Steps for a stage: ``requested`` if > 0, else as many as fit in ``minutes``.

    The estimate times ``step_fn`` (which trains throwaway copies) and is stored in the work dir,
    so a resumed run keeps the same total and therefore the same learning-rate schedule.
    """
    if requested > 0:
        return requested
    plan = work / f"{name}_plan.json"
    if plan.exists():
        return int(json.loads(plan.read_text())["steps"])
    for _ in range(10):
        step_fn()
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for _ in range(30):
        step_fn()
    sync()
    per_step = (time.perf_counter() - t0) / 30
    steps = max(100, int(minutes * 60 / per_step))
    atomic_write_text(plan, json.dumps({"steps": steps, "seconds_per_step": per_step}) + "\n")
    return steps


def save_ckpt(path: Path, state: dict) -> None:
    import io

    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def to_tensor(x: np.ndarray) -> torch.Tensor:
    """uint8 N×H×W×3 -> float N×3×H×W in [-1, 1]."""
    return torch.from_numpy(x).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def lr_at(step: int, total: int, base: float, warmup: int = 200) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def progress(total: int, desc: str, start: int = 0):
    from genie_plugin.progress import make_progress

    p = make_progress()
    task = p.add_task(desc, total=total, completed=start, info="")
    return p, task


def classifier_transform(x: torch.Tensor, size: int, gen: torch.Generator | None) -> torch.Tensor:
    """[-1,1] images -> ImageNet-normalised ``size`` px.

    With ``gen`` (training): random crop/shift, channel permutation, grayscale, brightness and
    contrast jitter and blur. Class = shape, so colour is pure nuisance, and blur/colour shifts
    are what a VAE decoder adds: the oracle must judge shape, not rendering quality.
    """
    x = (x + 1) / 2
    if gen is not None:
        n = x.shape[0]
        perm = torch.stack([torch.randperm(3, generator=gen) for _ in range(n)])
        x = torch.gather(x, 1, perm[:, :, None, None].expand_as(x))
        gray = torch.rand(n, generator=gen) < 0.2
        x[gray] = x[gray].mean(1, keepdim=True).expand(-1, 3, -1, -1)
        b = (torch.rand(n, 1, 1, 1, generator=gen) - 0.5) * 0.3
        c = 1 + (torch.rand(n, 1, 1, 1, generator=gen) - 0.5) * 0.6
        m = x.mean((1, 2, 3), keepdim=True)
        x = ((x - m) * c + m + b).clamp(0, 1)
        blur = torch.rand(n, generator=gen) < 0.5
        if blur.any():
            from torchvision.transforms.v2.functional import gaussian_blur

            sigma = float(torch.rand(1, generator=gen)) * 0.9 + 0.3
            x[blur] = gaussian_blur(x[blur], kernel_size=[5, 5], sigma=[sigma, sigma])
        scale = torch.rand(n, generator=gen) * 0.35 + 0.65
        tx, ty = (torch.rand(2, n, generator=gen) * 2 - 1) * (1 - scale)
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0] = scale
        theta[:, 1, 1] = scale
        theta[:, 0, 2] = tx
        theta[:, 1, 2] = ty
        grid = F.affine_grid(theta, (n, 3, size, size), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    else:
        x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return (x - mean) / std


# ----------------------------------------------------------------------------- stages
def train_classifier(x, y, num_classes, cfg: TrainConfig, seed: int, desc: str, log: Log, device):
    model = build_classifier(cfg.backbone_arch, num_classes, seed).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.02)
    g = torch.Generator().manual_seed(seed)
    n, bs = len(x), 128
    steps = cfg.clf_epochs * math.ceil(n / bs)
    xt, yt = to_tensor(x), torch.from_numpy(y)
    p, task = progress(steps, desc)
    step = 0
    with p:
        for _ in range(cfg.clf_epochs):
            perm = torch.randperm(n, generator=g)
            for i in range(0, n, bs):
                idx = perm[i : i + bs]
                for group in opt.param_groups:
                    group["lr"] = lr_at(step, steps, 3e-3, warmup=50)
                xb = classifier_transform(xt[idx], cfg.clf_image_size, g).to(device)
                loss = F.cross_entropy(model(xb), yt[idx].to(device), label_smoothing=0.1)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                p.update(task, advance=1, info=f"loss {loss.item():.3f}")
                if step % 20 == 0:
                    log(stage=desc, step=step, loss=round(loss.item(), 4))
    return model.eval()


@torch.no_grad()
def classifier_predictions(model, x, size, device) -> np.ndarray:
    return np.concatenate(
        [
            model(classifier_transform(to_tensor(x[i : i + 256]), size, None).to(device))
            .argmax(1)
            .cpu()
            .numpy()
            for i in range(0, len(x), 256)
        ]
    )


def classifier_accuracy(model, x, y, size, device) -> float:
    return float((classifier_predictions(model, x, size, device) == y).mean())


def half_state(model) -> dict:
    """fp16 storage halves the shipped size; the loader upcasts."""
    return {
        k: (v.half() if v.is_floating_point() else v).contiguous().cpu()
        for k, v in model.state_dict().items()
    }


def stage_classifiers(work: Path, cfg: TrainConfig, log: Log, device) -> None:
    from safetensors.torch import save_file

    if (work / "oracle.safetensors").exists() and (work / "backbone.safetensors").exists():
        return
    base = [shapes.CLASSES.index(c) for c in shapes.SPLITS["base"]]
    fx, fy = shapes.generate(cfg.fewshot_images_per_class, seed=cfg.seed, pool="fewshot")
    keep = np.isin(fy, base)
    remap = {c: i for i, c in enumerate(base)}
    bx, by = fx[keep], np.array([remap[c] for c in fy[keep]])
    backbone = train_classifier(bx, by, len(base), cfg, cfg.seed + 11, "backbone", log, device)
    acc_b = classifier_accuracy(backbone, bx, by, cfg.clf_image_size, device)
    gx, gy = generate_parallel(cfg.gen_images_per_class, cfg.seed, "generator")
    oracle = train_classifier(
        gx, gy, len(shapes.CLASSES), cfg, cfg.seed + 13, "oracle", log, device
    )
    acc_o = classifier_accuracy(oracle, fx, fy, cfg.clf_image_size, device)  # held-out pool
    log(stage="classifiers", backbone_train_acc=acc_b, oracle_heldout_acc=acc_o)
    meta = {"arch": cfg.backbone_arch, "image_size": str(cfg.clf_image_size)}
    save_file(
        half_state(backbone),
        str(work / "backbone.safetensors"),
        metadata={**meta, "num_classes": str(len(base))},
    )
    save_file(
        half_state(oracle),
        str(work / "oracle.safetensors"),
        metadata={**meta, "num_classes": str(len(shapes.CLASSES)), "heldout_acc": f"{acc_o:.4f}"},
    )


def retrain_oracle(out: Path, cfg: TrainConfig, log: Log, device, heldout_per_class: int = 40):
    """Train only the oracle (the judge) on the generator pool; the backbone is left alone.

    A judge's own errors cap every oracle-judged figure, so its held-out accuracy (overall and
    per class, on fewshot-pool images the generator never saw) goes into the metadata.
    """
    from safetensors.torch import save

    gx, gy = generate_parallel(cfg.gen_images_per_class, cfg.seed, "generator")
    oracle = train_classifier(
        gx, gy, len(shapes.CLASSES), cfg, cfg.seed + 13, "oracle", log, device
    )
    fx, fy = shapes.generate(heldout_per_class, seed=cfg.seed, pool="fewshot")
    pred = classifier_predictions(oracle, fx, cfg.clf_image_size, device)
    per_class = {
        name: round(float((pred[fy == c] == c).mean()), 3) for c, name in enumerate(shapes.CLASSES)
    }
    acc = float((pred == fy).mean())
    log(stage="oracle", oracle_heldout_acc=acc, per_class=per_class)
    meta = {
        "arch": cfg.backbone_arch,
        "image_size": str(cfg.clf_image_size),
        "num_classes": str(len(shapes.CLASSES)),
        "heldout_acc": f"{acc:.4f}",
        "heldout_per_class": json.dumps(per_class, sort_keys=True),
        "train_images_per_class": str(cfg.gen_images_per_class),
        "epochs": str(cfg.clf_epochs),
    }
    atomic_write_bytes(out, save(half_state(oracle), metadata=meta))
    return acc, per_class


def stage_vae(work: Path, cfg: TrainConfig, log: Log, device, x_all: torch.Tensor) -> None:
    if (work / "vae.done").exists():
        return
    vae, _, _ = build_models(600, cfg.seed)
    vae.to(device).train()
    opt = torch.optim.AdamW(vae.parameters(), lr=1e-3, weight_decay=0.0)
    g = torch.Generator().manual_seed(cfg.seed + 1)

    def vae_loss(model, gen):
        idx = torch.randint(0, len(x_all), (cfg.vae_batch,), generator=gen)
        xb = x_all[idx].to(device)
        with autocast(device):
            post = model.encode(xb).latent_dist
            z = post.mean + post.std * torch.randn(post.mean.shape, generator=gen).to(device)
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
    start = 0
    ck = work / "vae.ckpt"
    if ck.exists():
        st = torch.load(ck, map_location="cpu", weights_only=False)
        vae.load_state_dict(st["vae"])
        opt.load_state_dict(st["opt"])
        g.set_state(st["gen"])
        start = st["step"]
    p, task = progress(total, "vae", start)
    with p:
        for step in range(start, total):
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, 1e-3, warmup=50)
            loss_rec, loss = vae_loss(vae, g)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            p.update(task, advance=1, info=f"rec {loss_rec.item():.4f}")
            if (step + 1) % 20 == 0:
                log(stage="vae", step=step + 1, rec=round(loss_rec.item(), 5))
            if (step + 1) % cfg.ckpt_every == 0 or step + 1 == total:
                save_ckpt(
                    ck,
                    {
                        "vae": vae.state_dict(),
                        "opt": opt.state_dict(),
                        "gen": g.get_state(),
                        "step": step + 1,
                    },
                )
    # SD's convention: scale latents to unit variance (SD 1.x uses 0.18215).
    vae.eval()
    with torch.no_grad():
        mus = torch.cat(
            [
                vae.encode(x_all[i : i + 256].to(device)).latent_dist.mode()
                for i in range(0, len(x_all), 256)
            ]
        )
    vae.register_to_config(scaling_factor=float(1.0 / mus.std()))
    save_ckpt(
        work / "vae.pt",
        {"vae": vae.state_dict(), "scaling_factor": vae.config.scaling_factor, "steps": total},
    )
    log(stage="vae", scaling_factor=vae.config.scaling_factor)
    atomic_write_text(work / "vae.done", "ok\n")


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
    if (work / "unet.done").exists():
        return
    vae, unet, te = build_models(len(tokenizer), cfg.seed)
    st = torch.load(work / "vae.pt", map_location="cpu", weights_only=False)
    vae.load_state_dict(st["vae"])
    vae.register_to_config(scaling_factor=st["scaling_factor"])
    vae.to(device).eval()
    with torch.no_grad():
        lat = torch.cat(
            [
                vae.encode(x_all[i : i + 256].to(device)).latent_dist.mode()
                for i in range(0, len(x_all), 256)
            ]
        )
        lat = (lat * vae.config.scaling_factor).cpu()
    captions = [
        CAPTION.format(name=shapes.CLASSES[c].replace("_", " ")) for c in range(len(shapes.CLASSES))
    ]
    ids = tokenizer(
        captions + [""],
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids
    empty_id = len(captions)
    sched = noise_scheduler()
    acp = sched.alphas_cumprod
    snr = acp / (1 - acp)
    unet.to(device).train()
    te.to(device).train()
    params = list(unet.parameters()) + list(te.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.unet_lr, weight_decay=0.01)
    ema_u = {k: v.detach().clone() for k, v in unet.state_dict().items()}
    ema_t = {k: v.detach().clone() for k, v in te.state_dict().items()}
    y_t = torch.from_numpy(y_all)

    def unet_loss(u, enc, gen):
        idx = torch.randint(0, len(lat), (cfg.unet_batch,), generator=gen)
        z0 = lat[idx]
        cap = y_t[idx].clone()
        cap[torch.rand(len(idx), generator=gen) < cfg.empty_caption_p] = empty_id
        noise = torch.randn(z0.shape, generator=gen)
        t = torch.randint(0, 1000, (len(idx),), generator=gen)
        zt = sched.add_noise(z0, noise, t)
        with autocast(device):
            ehs = enc(ids[cap].to(device))[0]
            pred = u(zt.to(device), t.to(device), encoder_hidden_states=ehs).sample.float()
        w = (torch.clamp(snr[t], max=cfg.min_snr_gamma) / snr[t]).to(device)
        return (w * ((pred - noise.to(device)) ** 2).mean(dim=(1, 2, 3))).mean()

    def timing_step(_m=[]):  # noqa: B006 - throwaway copies built once
        if not _m:
            import copy

            u, enc = copy.deepcopy(unet), copy.deepcopy(te)
            ps = list(u.parameters()) + list(enc.parameters())
            _m += [u, enc, ps, torch.optim.AdamW(ps, lr=1e-5), torch.Generator().manual_seed(9)]
        u, enc, ps, o, gg = _m
        o.zero_grad(set_to_none=True)
        unet_loss(u, enc, gg).backward()
        torch.nn.utils.clip_grad_norm_(ps, 1.0)
        o.step()
        ema_update(
            {k: v.clone() for k, v in ema_u.items()},
            u,
            {k: v.clone() for k, v in ema_t.items()},
            enc,
            0.999,
        )

    total = plan_steps(work, "unet", cfg.unet_steps, cfg.unet_max_minutes, timing_step, device)
    g = torch.Generator().manual_seed(cfg.seed + 2)
    start, elapsed_before = 0, 0.0
    ck = work / "unet.ckpt"
    if init_from is not None and not ck.exists():
        # warm start (a second training phase): the exported fp16 weights, upcast
        from diffusers import UNet2DConditionModel
        from transformers import CLIPTextModel

        unet.load_state_dict(UNet2DConditionModel.from_pretrained(init_from / "unet").state_dict())
        te.load_state_dict(CLIPTextModel.from_pretrained(init_from / "text_encoder").state_dict())
        unet.float()
        te.float()
        ema_u = {k: v.detach().clone() for k, v in unet.state_dict().items()}
        ema_t = {k: v.detach().clone() for k, v in te.state_dict().items()}
        log(stage="unet", init_from=str(init_from))
    if ck.exists():
        s = torch.load(ck, map_location="cpu", weights_only=False)
        unet.load_state_dict(s["unet"])
        te.load_state_dict(s["te"])
        opt.load_state_dict(s["opt"])
        ema_u = {k: v.to(device) for k, v in s["ema_u"].items()}
        ema_t = {k: v.to(device) for k, v in s["ema_t"].items()}
        g.set_state(s["gen"])
        start, elapsed_before = s["step"], s.get("elapsed", 0.0)
    t0 = time.time()
    step = start

    def checkpoint() -> None:
        save_ckpt(
            ck,
            {
                "unet": unet.state_dict(),
                "te": te.state_dict(),
                "opt": opt.state_dict(),
                "ema_u": ema_u,
                "ema_t": ema_t,
                "gen": g.get_state(),
                "step": step,
                "elapsed": elapsed_before + time.time() - t0,
            },
        )

    p, task = progress(total, "unet", start)
    with p:
        while step < total:
            elapsed = elapsed_before + time.time() - t0
            if cfg.unet_steps > 0 and elapsed > cfg.unet_max_minutes * 60:
                log(stage="unet", stopped_early_at=step, minutes=round(elapsed / 60, 1))
                break
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, cfg.unet_lr)
            loss = unet_loss(unet, te, g)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            step += 1
            ema_update(ema_u, unet, ema_t, te, min(cfg.ema_decay, (1 + step) / (10 + step)))
            if step % 20 == 0:
                p.update(task, completed=step, info=f"loss {loss.item():.4f}")
                log(
                    stage="unet",
                    step=step,
                    loss=round(loss.item(), 5),
                    lr=opt.param_groups[0]["lr"],
                )
            if step % cfg.ckpt_every == 0 or step == total:
                checkpoint()
    checkpoint()
    save_ckpt(
        work / "unet.pt",
        {
            "unet": ema_u,
            "te": ema_t,
            "step": step,
            "planned": total,
            "minutes": round((elapsed_before + time.time() - t0) / 60, 1),
        },
    )
    atomic_write_text(work / "unet.done", json.dumps({"steps": step}) + "\n")


def stage_export(
    work: Path,
    out: Path,
    cfg: TrainConfig,
    tokenizer_dir: Path,
    device: str = "cpu",
    previous: dict | None = None,
) -> Path:
    """Write the diffusers folder (UNet/text encoder fp16, VAE fp32) + classifiers into ``out``."""
    import shutil
    import tempfile

    from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir)
    vae, unet, te = build_models(len(tokenizer), cfg.seed)
    st = torch.load(work / "vae.pt", map_location="cpu", weights_only=False)
    vae.load_state_dict(st["vae"])
    vae.register_to_config(scaling_factor=st["scaling_factor"])
    s = torch.load(work / "unet.pt", map_location="cpu", weights_only=False)
    unet.load_state_dict(s["unet"])
    te.load_state_dict(s["ema_t"] if "ema_t" in s else s["te"])
    scheduler = DPMSolverMultistepScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        steps_offset=1,
        timestep_spacing="linspace",
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=te.half(),
        tokenizer=tokenizer,
        unet=unet.half(),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=out))
    pipe.save_pretrained(tmp / "model", safe_serialization=True)
    for name in ("backbone.safetensors", "oracle.safetensors"):
        shutil.copy2(work / name, tmp / name)
    atomic_write_text(
        tmp / "train_config.json",
        json.dumps(
            {
                **asdict(cfg),
                "vae_steps_done": st.get("steps", cfg.vae_steps),
                "unet_steps_done": s["step"],
                "unet_steps_planned": s.get("planned", cfg.unet_steps),
                "unet_minutes": s.get("minutes"),
                "device": device,
                **({"previous_phase": previous} if previous else {}),
            },
            indent=2,
            sort_keys=True,
        ),
    )
    for child in tmp.iterdir():
        dest = out / child.name
        if dest.exists():
            shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
        child.rename(dest)
    tmp.rmdir()
    return out


def generate_parallel(n_per_class: int, seed: int, pool: str):
    """``shapes.generate`` with one process per class (each class has its own seeded stream)."""
    import os
    from concurrent.futures import ProcessPoolExecutor

    workers = min(len(shapes.CLASSES), os.cpu_count() or 1)
    if workers <= 2:
        return shapes.generate(n_per_class, seed=seed, pool=pool)
    with ProcessPoolExecutor(workers) as ex:
        xs = list(ex.map(_render_class, [(c, n_per_class, seed, pool) for c in shapes.CLASSES]))
    ys = np.repeat(np.arange(len(shapes.CLASSES)), n_per_class)
    return np.concatenate(xs), ys


def _render_class(args):
    name, n, seed, pool = args
    return shapes.generate_class(name, n, seed=seed, pool=pool)[0]


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


def train(
    work_dir: Path,
    out_dir: Path,
    cfg: TrainConfig = TrainConfig(),
    device: str = "cpu",
    init_from: Path | None = None,
    previous: dict | None = None,
) -> Path:
    work_dir.mkdir(parents=True, exist_ok=True)
    log = Log(work_dir / "log.jsonl")
    log(stage="start", config=asdict(cfg), device=device)
    dev = torch.device(device)
    stage_classifiers(work_dir, cfg, log, dev)
    gx, gy = generate_parallel(cfg.gen_images_per_class, cfg.seed, "generator")
    x_all = to_tensor(gx)
    if init_from is not None:
        reuse_vae(work_dir, init_from)
    stage_vae(work_dir, cfg, log, dev, x_all)
    tok_dir = work_dir / "tokenizer"
    tokenizer = build_tokenizer(tok_dir)
    stage_unet(work_dir, cfg, log, dev, x_all, gy, tokenizer, init_from)
    out = stage_export(work_dir, out_dir, cfg, tok_dir, torch.device(device).type, previous)
    log(stage="done", out=str(out))
    return out


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work-dir", type=Path, default=Path("out/embedded-train"))
    ap.add_argument("--out-dir", type=Path, default=Path("genie_plugin/embedded/weights"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--unet-steps", type=int, default=TrainConfig.unet_steps)
    ap.add_argument("--unet-max-minutes", type=float, default=TrainConfig.unet_max_minutes)
    ap.add_argument("--vae-steps", type=int, default=TrainConfig.vae_steps)
    ap.add_argument("--vae-minutes", type=float, default=TrainConfig.vae_minutes)
    ap.add_argument("--gen-images-per-class", type=int, default=TrainConfig.gen_images_per_class)
    ap.add_argument("--vae-batch", type=int, default=TrainConfig.vae_batch)
    ap.add_argument("--unet-batch", type=int, default=TrainConfig.unet_batch)
    ap.add_argument("--unet-lr", type=float, default=TrainConfig.unet_lr)
    ap.add_argument("--ema-decay", type=float, default=TrainConfig.ema_decay)
    ap.add_argument(
        "--init-from",
        type=Path,
        default=None,
        help="warm-start from this exported weights folder: reuse its VAE, continue its "
        "UNet and text encoder (a second training phase)",
    )
    ap.add_argument(
        "--skip-classifiers-from",
        type=Path,
        default=None,
        help="reuse backbone/oracle .safetensors from this folder (e.g. the shipped weights)",
    )
    ap.add_argument("--clf-epochs", type=int, default=TrainConfig.clf_epochs)
    ap.add_argument(
        "--oracle-only",
        type=Path,
        default=None,
        metavar="FILE",
        help="train only the oracle (judge) and write it to FILE (.safetensors); nothing else "
        "changes",
    )
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    cfg = TrainConfig(
        seed=a.seed,
        unet_steps=a.unet_steps,
        unet_max_minutes=a.unet_max_minutes,
        vae_steps=a.vae_steps,
        vae_minutes=a.vae_minutes,
        vae_batch=a.vae_batch,
        gen_images_per_class=a.gen_images_per_class,
        unet_batch=a.unet_batch,
        unet_lr=a.unet_lr,
        ema_decay=a.ema_decay,
        clf_epochs=a.clf_epochs,
    )
    if a.skip_classifiers_from is not None:
        import shutil

        a.work_dir.mkdir(parents=True, exist_ok=True)
        for name in ("backbone.safetensors", "oracle.safetensors"):
            if not (a.work_dir / name).exists():
                shutil.copy2(a.skip_classifiers_from / name, a.work_dir / name)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if a.oracle_only is not None:
        a.work_dir.mkdir(parents=True, exist_ok=True)
        log = Log(a.work_dir / "oracle_log.jsonl")
        log(stage="start", config=asdict(cfg), device=a.device)
        print(retrain_oracle(a.oracle_only, cfg, log, torch.device(a.device)))
        raise SystemExit(0)
    previous = None
    if a.init_from is not None:
        prev_cfg = a.init_from / "train_config.json"
        previous = json.loads(prev_cfg.read_text()) if prev_cfg.exists() else {"from": "unknown"}
        a.init_from = a.init_from / "model"
    print(train(a.work_dir, a.out_dir, cfg, a.device, a.init_from, previous))
