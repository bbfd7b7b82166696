"""The paper's scenarios rehearsed end to end: every shipped real scenario (mini, tiered, CUB ×
1-/5-shot) runs through the CLI on stand-in files in exactly the real formats, with the
embedded model as a single original-layout SD checkpoint (``--model FILE --config DIR``) and a
backbone checkpoint in UniSiam's layout (a timm MobileNetV3 encoder: the layout is what is
rehearsed, and embedding every view at the scenarios' 224 px with a ResNet-18 would cost CI
minutes). Only episodes, steps and resolution are overridden."""

import json

import pytest
import torch
from typer.testing import CliRunner

from genie_cli.main import app
from genie_plugin.bench.scenario import DEFAULT_STRATEGIES
from genie_plugin.data.names import is_synset_id
from genie_plugin.diffusion.cache import AugmentationCache
from genie_plugin.diffusion.fingerprint import single_file_fingerprint
from genie_plugin.io import read_jsonl
from tests.real_formats import write_cub, write_imagenet_for, write_mini, write_tiered

PER_CLASS = 5 + 16  # 5 shots + 16 queries, the shipped scenarios' numbers
BACKBONE = "mobilenetv3_small_050"


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory):
    import timm

    from genie_plugin.diffusion import load_generator
    from genie_plugin.diffusion.single_file import save_single_file
    from genie_plugin.embedded.assets import model_dir

    root = tmp_path_factory.mktemp("data")
    write_mini(root, PER_CLASS)
    write_tiered(root, PER_CLASS)
    write_cub(root, PER_CLASS, size=48)
    for full in ("mini-imagenet-full", "tiered-imagenet-full"):  # ImageNet train layout
        write_imagenet_for(root / "imagenet", full, per_class=PER_CLASS)
    ckpt = save_single_file(
        load_generator("embedded", device="cpu"), root / "sd-embedded.safetensors"
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        enc = timm.create_model(BACKBONE, pretrained=False, num_classes=0).state_dict()
    unisiam = {  # UniSiam's checkpoint: encoder + projector/predictor, wrapped, with an epoch
        "epoch": 400,
        "state_dict": {
            **{f"encoder.{k}": v for k, v in enc.items()},
            "proj.0.weight": torch.zeros(8, 1024),
            "pred.0.weight": torch.zeros(8, 8),
        },
    }
    torch.save(unisiam, root / "unisiam.pth")
    return root, ckpt, str(model_dir())


REAL = ("mini", "tiered", "cub", "mini-full", "tiered-full")


@pytest.mark.parametrize("scenario", [f"{d}-5w{k}s" for d in REAL for k in (1, 5)])
def test_shipped_scenario_runs_end_to_end(stand_ins, scenario, tmp_path):
    root, ckpt, config = stand_ins
    data = root / "imagenet" if "-full" in scenario else root
    out, cache = tmp_path / "results.jsonl", tmp_path / "cache"
    args = [
        "bench", "run", scenario, "--root", str(data), "--model", str(ckpt), "--config", config,
        "--backbone", f"{BACKBONE}:{root / 'unisiam.pth'}", "--out", str(out),
        "--cache", str(cache), "--episodes", "1", "--steps", "4", "--resolution", "16",
    ]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    rows = {r["strategy"]: r for r in read_jsonl(out)}
    assert set(rows) == set(DEFAULT_STRATEGIES) and all(
        r["scenario"] == scenario for r in rows.values()
    )
    failed = {s: r.get("error") for s, r in rows.items() if r["status"] != "ok"}
    assert not failed, failed
    fp = single_file_fingerprint(ckpt, config)
    assert all(r["model"]["fingerprint"] == fp for r in rows.values() if "model" in r)
    assert rows["genie"]["images_generated"] > 0
    # the manifests carry the checkpoint's fingerprint, and every prompt is words
    manifest, _ = AugmentationCache(cache).records()
    assert manifest and {m["model"] for m in manifest} == {fp}
    prompts = {m["prompt"] for m in manifest}
    assert not [p for p in prompts if is_synset_id(p) or "_" in p], sorted(prompts)[:3]
    assert {m["resolution"] for m in manifest} == {16} and {m["steps"] for m in manifest} == {4}
    # a second run generates nothing and scores the same
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    again = {r["strategy"]: r for r in read_jsonl(out)}
    assert all(r["images_generated"] == 0 for r in again.values())
    assert {s: r["mean"] for s, r in again.items()} == {s: r["mean"] for s, r in rows.items()}
    header = " ".join(res.output.split())
    assert f"model {ckpt} --config {config} (4 steps, 16 px" in header and "224 px views" in header
    assert json.dumps(rows["genie"]["strategy_config"])  # config recorded


@pytest.mark.slow
def test_mini_scenario_with_the_real_sd15(stand_ins, tmp_path):
    """The same path with the scenario's own model (SD 1.5 from the HF cache, 512 px, 50 steps):
    run with ``-m slow`` on a machine that has the weights."""
    from huggingface_hub import try_to_load_from_cache

    from genie_plugin.bench.scenario import Scenario

    model = Scenario.load("mini-5w1s").model
    if not isinstance(try_to_load_from_cache(model, "model_index.json"), str):
        pytest.skip(f"{model} not in the HF cache")
    root, _, _ = stand_ins
    out = tmp_path / "results.jsonl"
    args = ["bench", "run", "mini-5w1s", "--root", str(root), "--episodes", "1", "--out", str(out)]
    args += ["--backbone", f"{BACKBONE}:{root / 'unisiam.pth'}", "--cache", str(tmp_path / "c")]
    res = CliRunner().invoke(app, [*args, "-s", "genie", "-s", "text2image"])
    assert res.exit_code == 0, res.output
    rows = {r["strategy"]: r for r in read_jsonl(out)}
    assert all(r["status"] == "ok" and r["images_generated"] == 20 for r in rows.values())
    assert rows["genie"]["model"]["fingerprint"].startswith("sha256:")
    assert all(
        0.0 <= r["mean"] <= 100.0 and len(r["episode_accuracies"]) == 1 for r in rows.values()
    )
