"""Stage ``classifiers``: the few-shot backbone (base classes of the benchmark pool) and the
oracle (all classes of the generator pool), both timm networks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from genie_plugin.embedded import shapes
from genie_plugin.embedded.training.common import (
    Log,
    TrainConfig,
    cosine_lr,
    progress,
    to_tensor,
)
from genie_plugin.embedded.training.data import generate_parallel
from genie_plugin.embedded.training.models import build_classifier
from genie_plugin.io import atomic_write_bytes


def classifier_transform(
    x: torch.Tensor, size: int, rng: torch.Generator | None, *, scramble_colour: bool = True
) -> torch.Tensor:
    """[-1,1] images -> ImageNet-normalised ``size`` px.

    With ``rng`` (training): random crop/shift, channel permutation, grayscale, brightness and
    contrast jitter and blur. Class = shape, so colour is pure nuisance, and blur/colour shifts
    are what a VAE decoder adds: the oracle must judge shape, not rendering quality.
    ``scramble_colour=False`` drops the channel permutation and grayscale, as ImageNet
    pretraining does not scramble hues: a backbone that can learn colour where it predicts.
    """
    x = (x + 1) / 2
    if rng is not None:
        n = x.shape[0]
        if scramble_colour:
            perm = torch.stack([torch.randperm(3, generator=rng) for _ in range(n)])
            x = torch.gather(x, 1, perm[:, :, None, None].expand_as(x))
            gray = torch.rand(n, generator=rng) < 0.2
            x[gray] = x[gray].mean(1, keepdim=True).expand(-1, 3, -1, -1)
        b = (torch.rand(n, 1, 1, 1, generator=rng) - 0.5) * 0.3
        c = 1 + (torch.rand(n, 1, 1, 1, generator=rng) - 0.5) * 0.6
        m = x.mean((1, 2, 3), keepdim=True)
        x = ((x - m) * c + m + b).clamp(0, 1)
        blur = torch.rand(n, generator=rng) < 0.5
        if blur.any():
            from torchvision.transforms.v2.functional import gaussian_blur

            sigma = float(torch.rand(1, generator=rng)) * 0.9 + 0.3
            x[blur] = gaussian_blur(x[blur], kernel_size=[5, 5], sigma=[sigma, sigma])
        scale = torch.rand(n, generator=rng) * 0.35 + 0.65
        tx, ty = (torch.rand(2, n, generator=rng) * 2 - 1) * (1 - scale)
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
def train_classifier(
    x,
    y,
    num_classes,
    cfg: TrainConfig,
    seed: int,
    desc: str,
    log: Log,
    device,
    *,
    scramble_colour: bool = True,
):
    model = build_classifier(cfg.backbone_arch, num_classes, seed).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.02)
    rng = torch.Generator().manual_seed(seed)
    n, bs = len(x), 128
    steps = cfg.clf_epochs * math.ceil(n / bs)
    xt, yt = to_tensor(x), torch.from_numpy(y)
    lr = cosine_lr(opt, steps, warmup=50)
    p, task = progress(steps, desc)
    step = 0
    with p:
        for _ in range(cfg.clf_epochs):
            perm = torch.randperm(n, generator=rng)
            for i in range(0, n, bs):
                idx = perm[i : i + bs]
                xb = classifier_transform(
                    xt[idx], cfg.clf_image_size, rng, scramble_colour=scramble_colour
                ).to(device)
                loss = F.cross_entropy(model(xb), yt[idx].to(device), label_smoothing=0.1)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                lr.step()
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
    from safetensors.torch import save

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
    # atomic: the stage counts as done when both files exist
    backbone_meta = {**meta, "num_classes": str(len(base))}
    atomic_write_bytes(
        work / "backbone.safetensors", save(half_state(backbone), metadata=backbone_meta)
    )
    oracle_meta = {**meta, "num_classes": str(len(shapes.CLASSES)), "heldout_acc": f"{acc_o:.4f}"}
    atomic_write_bytes(work / "oracle.safetensors", save(half_state(oracle), metadata=oracle_meta))


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


def train_context_backbone(out: Path, cfg: TrainConfig, log: Log, device, rho: float) -> float:
    """The backbone of the class–context experiment: the shipped backbone's architecture and
    recipe, trained on the base classes of ``shapes-ctx`` (context correlated with the class at
    ``rho``) without the colour scrambling, so it may learn the background where it predicts the
    class, as an ImageNet backbone learns scenes. Returns its training accuracy."""
    from safetensors.torch import save

    base = list(shapes.SPLITS["base"])
    bx, by = shapes.generate(
        cfg.fewshot_images_per_class,
        seed=cfg.seed,
        pool="fewshot",
        classes=base,
        context_rho=rho,
    )
    remap = {shapes.CLASSES.index(c): i for i, c in enumerate(base)}
    by = np.array([remap[int(c)] for c in by])
    model = train_classifier(
        bx, by, len(base), cfg, cfg.seed + 11, "backbone-ctx", log, device, scramble_colour=False
    )
    acc = classifier_accuracy(model, bx, by, cfg.clf_image_size, device)
    log(stage="backbone-ctx", train_acc=acc)
    meta = {
        "arch": cfg.backbone_arch,
        "image_size": str(cfg.clf_image_size),
        "num_classes": str(len(base)),
        "context_rho": str(rho),
        "scramble_colour": "false",
        "train_acc": f"{acc:.4f}",
        "epochs": str(cfg.clf_epochs),
    }
    atomic_write_bytes(out, save(half_state(model), metadata=meta))
    return acc
