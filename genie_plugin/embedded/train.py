"""Train the embedded default: VAE, text encoder + UNet, few-shot backbone and oracle.

Reproducible from a seed (all sampling through explicit generators), resumable (each stage
checkpoints atomically and a finished stage is skipped), logs losses to ``log.jsonl`` and shows
a progress bar. ``--device cuda`` for minutes on a GPU. The stages live in
:mod:`genie_plugin.embedded.training` (artifacts in ``work_dir``): ``classifiers`` (backbone on
base classes of the fewshot pool; oracle on all classes of the generator pool), ``vae``,
``unet`` (with the CLIP text encoder), ``export`` (diffusers folder + weights into ``out_dir``).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch

from genie_plugin.embedded.training.classifiers import retrain_oracle, stage_classifiers
from genie_plugin.embedded.training.common import Log, TrainConfig, to_tensor
from genie_plugin.embedded.training.data import generate_parallel
from genie_plugin.embedded.training.export import stage_export
from genie_plugin.embedded.training.models import build_tokenizer
from genie_plugin.embedded.training.unet import stage_unet
from genie_plugin.embedded.training.vae import reuse_vae, stage_vae

__all__ = ["Log", "TrainConfig", "build_tokenizer", "retrain_oracle", "train"]


def train(
    work_dir: Path,
    out_dir: Path,
    cfg: TrainConfig | None = None,
    device: str = "cpu",
    init_from: Path | None = None,
    previous: dict | None = None,
) -> Path:
    cfg = cfg or TrainConfig()
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
