"""Training entry points that are cheap enough for CI (the full runs are in the model card)."""

import contextlib
import json
import time

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


def test_train_end_to_end_then_a_rerun_skips_every_finished_stage(tmp_path):
    """classifiers → vae → unet → export through ``train()`` on a few steps: the output is a
    diffusers pipeline the loader reads; run again on the same work dir, no stage trains twice
    and the export is the same weights."""
    from safetensors.torch import load_file

    from genie_plugin.diffusion import SampleItem, load_generator
    from genie_plugin.embedded.train import TrainConfig, train

    cfg = TrainConfig(
        gen_images_per_class=2, fewshot_images_per_class=2, clf_epochs=1, clf_image_size=32,
        vae_steps=2, vae_batch=4, unet_steps=2, unet_batch=4,
    )  # fmt: skip
    work = tmp_path / "work"
    out = train(work, tmp_path / "out", cfg)
    gen = load_generator(out / "model", device="cpu").with_sampler(steps=2)
    (img,) = gen.generate([SampleItem("a photo of a star.", 1.0, 0)])
    assert img.size == (shapes.IMAGE_SIZE, shapes.IMAGE_SIZE)
    assert json.loads((out / "train_config.json").read_text())["unet_steps_done"] == 2
    for name in ("backbone.safetensors", "oracle.safetensors"):
        with safe_open(str(out / name), "pt") as fh:
            assert fh.metadata()["image_size"] == "32"
    stages = [json.loads(x)["stage"] for x in (work / "log.jsonl").read_text().splitlines()]
    assert stages[0] == "start" and stages[-1] == "done"
    assert {"classifiers", "vae"} <= set(stages)
    assert all((work / f"{stage}.done").exists() for stage in ("vae", "unet"))

    again = train(work, tmp_path / "again", cfg)
    stages2 = [json.loads(x)["stage"] for x in (work / "log.jsonl").read_text().splitlines()]
    assert stages2[len(stages) :] == ["start", "done"]  # nothing trained the second time
    a = load_file(str(out / "model" / "unet" / "diffusion_pytorch_model.safetensors"))
    b = load_file(str(again / "model" / "unet" / "diffusion_pytorch_model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_vae_stage_resumes_from_its_checkpoint_to_the_same_weights(tmp_path, monkeypatch):
    """As the UNet stage: killed after the step-2 checkpoint, run again, the same VAE."""
    from genie_plugin.embedded.train import TrainConfig
    from genie_plugin.embedded.training import vae as vae_stage
    from genie_plugin.embedded.training.common import Log, to_tensor

    cfg = TrainConfig(vae_steps=4, vae_batch=4, ckpt_every=2)
    x = to_tensor(shapes.generate(1, seed=0, pool="generator")[0])
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    for work in (whole, killed):
        work.mkdir()
    vae_stage.stage_vae(whole, cfg, Log(whole / "log.jsonl"), torch.device("cpu"), x)
    real_save = vae_stage.save_ckpt

    def save_then_die(path, state):
        real_save(path, state)
        if state.get("step") == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(vae_stage, "save_ckpt", save_then_die)
    with contextlib.suppress(KeyboardInterrupt):
        vae_stage.stage_vae(killed, cfg, Log(killed / "log.jsonl"), torch.device("cpu"), x)
    assert not (killed / "vae.done").exists()
    monkeypatch.setattr(vae_stage, "save_ckpt", real_save)
    vae_stage.stage_vae(killed, cfg, Log(killed / "log.jsonl"), torch.device("cpu"), x)
    a = torch.load(whole / "vae.pt", weights_only=False)
    b = torch.load(killed / "vae.pt", weights_only=False)
    assert a["steps"] == b["steps"] == 4 and a["scaling_factor"] == b["scaling_factor"]
    assert all(torch.equal(a["vae"][k], b["vae"][k]) for k in a["vae"])


def test_a_time_budget_is_timed_once_and_kept_for_the_resumed_run(tmp_path):
    """``steps 0``: the count comes from timing throwaway steps, is stored, and a resumed run
    reads it back (same total, so the same LR schedule) without timing again."""
    from genie_plugin.embedded.training.common import plan_steps

    calls = []

    def step():
        calls.append(1)
        time.sleep(0.002)

    assert plan_steps(tmp_path, "vae", 7, 1.0, step, "cpu") == 7 and not calls  # explicit count
    assert not (tmp_path / "vae_plan.json").exists()
    steps = plan_steps(tmp_path, "vae", 0, 0.01, step, "cpu")  # 0.6 s at >= 2 ms a step
    assert len(calls) == 40  # 10 warm-up, 30 timed
    assert 100 <= steps <= 0.6 / 0.002  # at least 100 (the floor), at most what fits
    plan = json.loads((tmp_path / "vae_plan.json").read_text())
    assert plan["steps"] == steps and plan["seconds_per_step"] >= 0.002

    def must_not_run():
        raise AssertionError("timed again on resume")

    assert plan_steps(tmp_path, "vae", 0, 0.01, must_not_run, "cpu") == steps


def test_parallel_rendering_equals_the_serial_one(monkeypatch):
    """One process per class on machines with more than 2 cores: the same images and labels."""
    import os

    import numpy as np

    from genie_plugin.embedded.training.data import generate_parallel

    serial = generate_parallel(2, 3, "fewshot")  # 2 cores here: the serial path
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    parallel = generate_parallel(2, 3, "fewshot")
    assert np.array_equal(serial[0], parallel[0]) and np.array_equal(serial[1], parallel[1])
