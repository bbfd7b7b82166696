"""Training entry points that are cheap enough for CI (the full runs are in the model card)."""

import contextlib
import json

import torch
from safetensors import safe_open

from genie_plugin.embedded import shapes


def test_oracle_only_retraining_writes_a_loadable_judge_with_its_provenance(tmp_path):
    import timm
    from safetensors.torch import load_file

    from genie_plugin.embedded.train import Log, TrainConfig, retrain_oracle

    cfg = TrainConfig(gen_images_per_class=4, clf_epochs=1)
    out = tmp_path / "oracle.safetensors"
    acc, per_class = retrain_oracle(
        out, cfg, Log(tmp_path / "log.jsonl"), torch.device("cpu"), heldout_per_class=2
    )
    assert out.is_file() and not list(tmp_path.glob("*.tmp"))  # atomic: temp file renamed
    assert set(per_class) == set(shapes.CLASSES) and 0.0 <= acc <= 1.0
    with safe_open(str(out), "pt") as fh:
        meta = fh.metadata()
    assert meta["num_classes"] == "32" and meta["train_images_per_class"] == "4"
    assert float(meta["heldout_acc"]) == round(acc, 4)
    assert json.loads(meta["heldout_per_class"]) == per_class
    with torch.random.fork_rng(devices=[]):  # init weights are overwritten below
        model = timm.create_model(meta["arch"], pretrained=False, num_classes=32)
    state = load_file(str(out))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    log = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert log[-1]["stage"] == "oracle" and log[-1]["oracle_heldout_acc"] == acc


def _tiny_stages(work, cfg):
    from genie_plugin.embedded.training.common import Log, to_tensor
    from genie_plugin.embedded.training.models import build_tokenizer
    from genie_plugin.embedded.training.vae import stage_vae

    x, y = shapes.generate(1, seed=0, pool="generator")
    log = Log(work / "log.jsonl")
    stage_vae(work, cfg, log, torch.device("cpu"), to_tensor(x))
    return log, to_tensor(x), y, build_tokenizer(work / "tokenizer")


def test_unet_stage_resumes_from_its_checkpoint_to_the_same_weights(tmp_path, monkeypatch):
    """A run killed right after a checkpoint, run again, ends with the weights of a run that
    was never interrupted (model, optimizer, LR schedule, EMA and batch RNG all restored)."""
    from genie_plugin.embedded.train import TrainConfig
    from genie_plugin.embedded.training import unet as unet_stage

    cfg = TrainConfig(vae_steps=2, vae_batch=4, unet_steps=4, unet_batch=4, ckpt_every=2)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    for work in (whole, killed):
        work.mkdir()
    log, x, y, tok = _tiny_stages(whole, cfg)
    unet_stage.stage_unet(whole, cfg, log, torch.device("cpu"), x, y, tok)

    log, x, y, tok = _tiny_stages(killed, cfg)
    real_save = unet_stage.save_ckpt

    def save_then_die(path, state):
        real_save(path, state)
        if state.get("step") == 2:
            raise KeyboardInterrupt  # killed right after the step-2 checkpoint

    monkeypatch.setattr(unet_stage, "save_ckpt", save_then_die)
    with contextlib.suppress(KeyboardInterrupt):
        unet_stage.stage_unet(killed, cfg, log, torch.device("cpu"), x, y, tok)
    assert not (killed / "unet.done").exists()
    assert torch.load(killed / "unet.ckpt", weights_only=False)["step"] == 2
    monkeypatch.setattr(unet_stage, "save_ckpt", real_save)
    unet_stage.stage_unet(killed, cfg, log, torch.device("cpu"), x, y, tok)

    a = torch.load(whole / "unet.pt", weights_only=False)
    b = torch.load(killed / "unet.pt", weights_only=False)
    assert a["step"] == b["step"] == 4
    for part in ("unet", "te"):
        assert a[part].keys() == b[part].keys()
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), (part, k)


def test_exported_model_loads_through_diffusers_and_samples(tmp_path):
    """vae → unet → export on a few steps: the folder is a diffusers pipeline the loader reads."""
    import shutil

    from genie_plugin.diffusion import SampleItem, load_generator
    from genie_plugin.embedded.assets import weights_dir
    from genie_plugin.embedded.train import TrainConfig
    from genie_plugin.embedded.training.export import stage_export
    from genie_plugin.embedded.training.unet import stage_unet

    cfg = TrainConfig(vae_steps=2, vae_batch=4, unet_steps=2, unet_batch=4)
    work = tmp_path / "work"
    work.mkdir()
    log, x, y, tok = _tiny_stages(work, cfg)
    stage_unet(work, cfg, log, torch.device("cpu"), x, y, tok)
    for name in ("backbone.safetensors", "oracle.safetensors"):
        shutil.copy2(weights_dir() / name, work / name)
    out = stage_export(work, tmp_path / "out", cfg, work / "tokenizer")
    gen = load_generator(out / "model", device="cpu").with_sampler(steps=2)
    (img,) = gen.generate([SampleItem("a photo of a star.", 1.0, 0)])
    assert img.size == (shapes.IMAGE_SIZE, shapes.IMAGE_SIZE)
    assert json.loads((out / "train_config.json").read_text())["unet_steps_done"] == 2
