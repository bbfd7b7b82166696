"""Model loading through the public loader: folders, missing parts, hub ids offline, files."""

import json
import shutil

import pytest

from genie_plugin.diffusion import SamplerConfig, load_generator
from genie_plugin.diffusion.loading import resolve_model
from genie_plugin.diffusion.tiny import tiny_model_dir
from genie_plugin.errors import ConfigError, ModelFormatError, ModelNotFoundError, UnknownNameError


def test_tiny_model_is_a_real_diffusers_folder_and_fingerprint_is_stable(tiny_gen):
    folder = tiny_model_dir()
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    g2 = load_generator(str(folder), device="cpu")
    assert g2.fingerprint == tiny_gen.fingerprint
    assert type(g2.unet).__name__ == "UNet2DConditionModel"
    assert type(g2.vae).__name__ == "AutoencoderKL"
    assert type(g2.text_encoder).__name__ == "CLIPTextModel"


def test_folder_missing_a_component_names_it(tmp_path):
    broken = tmp_path / "sd"
    shutil.copytree(tiny_model_dir(), broken)
    shutil.rmtree(broken / "unet")
    with pytest.raises(ModelFormatError, match="missing component 'unet'"):
        load_generator(str(broken))
    (broken / "model_index.json").unlink()
    with pytest.raises(ModelFormatError, match="no model_index.json"):
        load_generator(str(broken))


def test_retrained_weights_change_the_fingerprint(tmp_path):
    from genie_plugin.diffusion.fingerprint import folder_fingerprint

    copy = tmp_path / "sd"
    shutil.copytree(tiny_model_dir(), copy)
    before = folder_fingerprint(copy)
    w = next((copy / "unet").glob("*.safetensors"))
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    assert folder_fingerprint(copy) != before


def test_missing_paths_and_hub_ids_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelNotFoundError, match="no such file or folder"):
        load_generator(str(tmp_path / "nope"))
    with pytest.raises(ModelNotFoundError, match="no such file"):
        load_generator("./weights/sd15.safetensors")
    with pytest.raises(ModelNotFoundError, match=r"HF_HUB_OFFLINE=1.*huggingface-cli download"):
        load_generator("someone/not-cached-model")
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"x")
    with pytest.raises(ModelFormatError, match="unsupported model file type"):
        load_generator(str(bad))


def test_single_file_without_config_offline_is_a_clear_error(tmp_path, monkeypatch):
    import torch
    from safetensors.torch import save_file

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    f = tmp_path / "tiny.safetensors"
    save_file({"w": torch.zeros(2)}, str(f))
    with pytest.raises(ModelFormatError, match=r"tiny.safetensors: could not load.*--config"):
        load_generator(str(f))


def test_resolve_model_kinds(tmp_path):
    assert resolve_model("tiny-random")[0] == "builtin"
    assert resolve_model(str(tmp_path))[0] == "folder"
    assert resolve_model("stable-diffusion-v1-5/stable-diffusion-v1-5")[0] == "hub"


def test_unknown_scheduler_and_bad_sampler_values():
    with pytest.raises(UnknownNameError, match="unknown scheduler 'plms'.*ddim, dpm\\+\\+, euler"):
        SamplerConfig(scheduler="plms")
    with pytest.raises(ConfigError):
        SamplerConfig(steps=0)
    with pytest.raises(ConfigError):
        SamplerConfig(resolution=30)
    with pytest.raises(ConfigError, match="unknown sampler keys"):
        SamplerConfig.from_dict({"stepz": 3})


@pytest.mark.slow
def test_real_sd15_from_hf_cache_generates():
    """Needs stable-diffusion-v1-5 in the HF cache (run with -m slow on a machine that has it)."""
    pytest.importorskip("diffusers")
    from huggingface_hub import try_to_load_from_cache

    repo = "stable-diffusion-v1-5/stable-diffusion-v1-5"
    if not isinstance(try_to_load_from_cache(repo, "model_index.json"), str):
        pytest.skip(f"{repo} not in the HF cache")
    import numpy as np
    from PIL import Image

    from genie_plugin.diffusion import SampleItem

    gen = load_generator(repo, sampler=SamplerConfig(steps=10))
    assert gen.native_resolution == 512
    # a structured source: left half red, right half blue
    src = Image.new("RGB", (512, 512), (220, 30, 30))
    src.paste((30, 30, 220), (256, 0, 512, 512))
    low, high = gen.generate(
        [SampleItem("a photo of a cat.", 0.3, 0, src), SampleItem("a photo of a cat.", 0.8, 0, src)]
    )
    a, lo, hi = (np.asarray(x, dtype=np.float64) for x in (src, low, high))

    def psnr(x, y):
        return 10 * np.log10(255.0**2 / max(np.mean((x - y) ** 2), 1e-9))

    # Img2Img at r = 0.3 keeps the source's layout; GeNIe's r = 0.8 departs far from it
    assert low.size == high.size == (512, 512)
    assert psnr(a, lo) > 18.0 and psnr(a, hi) < psnr(a, lo) - 3.0
    assert hi.std() > 10.0 and lo.std() > 10.0  # not a flat (NaN-decoded) image


def test_model_folder_recommends_its_sampler(tmp_path):
    emb = load_generator("embedded", device="cpu")
    assert emb.sampler.guidance_scale == 5.0 and emb.sampler.timestep_shift == 0.2
    assert load_generator("tiny-random", device="cpu").sampler == SamplerConfig()  # reference
    # an explicit sampler wins over the recommendation
    assert (
        load_generator("embedded", device="cpu", sampler=SamplerConfig()).sampler.guidance_scale
        == 7.5
    )
    repo = tmp_path / "m"
    shutil.copytree(tiny_model_dir(), repo)
    (repo / "genie_sampler.json").write_text(json.dumps({"_why": "x", "steps": 12}))
    assert load_generator(repo, device="cpu").sampler.steps == 12
    (repo / "genie_sampler.json").write_text(json.dumps({"stepz": 12}))
    with pytest.raises(ConfigError, match="stepz"):
        load_generator(repo, device="cpu")
    (repo / "genie_sampler.json").write_text("{")
    with pytest.raises(ModelFormatError, match="genie_sampler.json"):
        load_generator(repo, device="cpu")


def test_single_file_in_the_original_layout_loads_back_bit_for_bit(tiny_gen, tmp_path):
    """save_single_file writes the LDM layout; diffusers' from_single_file (with --config) gives
    every tensor back, and a model that is not SD-shaped is refused, naming the key."""
    import torch

    from genie_plugin.diffusion.single_file import UNET_PREFIX, save_single_file, unet_to_ldm

    f = save_single_file(tiny_gen, tmp_path / "tiny.safetensors")
    back = load_generator(str(f), device="cpu", config=str(tiny_model_dir()))
    for part in ("unet", "vae", "text_encoder"):
        a, b = getattr(tiny_gen, part).state_dict(), getattr(back, part).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), part
    from safetensors import safe_open

    with safe_open(str(f), "pt") as fh:
        assert any(k.startswith(UNET_PREFIX + "input_blocks.") for k in fh.keys())  # noqa: SIM118
    assert back.fingerprint.startswith("file:sha256:")
    with pytest.raises(ValueError, match="UNet key 'extra.weight' has no LDM counterpart"):
        unet_to_ldm({"extra.weight": torch.zeros(1)}, tiny_gen.unet.config)


def test_a_hub_id_loads_from_the_hf_cache_offline(tmp_path):
    """A user's ``--model org/name`` with the snapshot in the HF cache and HF_HUB_OFFLINE=1: it
    loads through diffusers' hub path, is fingerprinted by the snapshot's files, and generates
    what the same weights give from a folder. In a subprocess: the hub reads HF_HOME at import."""
    import hashlib
    import json
    import os
    import shutil
    import subprocess
    import sys

    from genie_plugin.diffusion.tiny import tiny_model_dir

    repo = tmp_path / "hf" / "hub" / "models--genie-test--tiny"
    snap = repo / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_model_dir(), snap)
    # the hub's layout: snapshot files are links to blobs named by their sha256; the repo
    # also has an fp16 variant the loader does not read
    (snap / "unet" / "diffusion_pytorch_model.fp16.safetensors").write_bytes(b"fp16 weights")
    (repo / "blobs").mkdir()
    for f in [f for f in snap.rglob("*") if f.is_file()]:
        blob = repo / "blobs" / hashlib.sha256(f.read_bytes()).hexdigest()
        f.rename(blob)
        f.symlink_to(os.path.relpath(blob, f.parent))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    code = """
import json, sys
import numpy as np
from genie_plugin.diffusion import SampleItem, load_generator
from genie_plugin.diffusion.loading import check_model_available
kind = check_model_available("genie-test/tiny")
hub = load_generator("genie-test/tiny", device="cpu").with_sampler(steps=2)
folder = load_generator(sys.argv[1], device="cpu").with_sampler(steps=2)
item = [SampleItem("a photo of a star.", 1.0, 7)]
same = np.array_equal(np.asarray(hub.generate(item)[0]), np.asarray(folder.generate(item)[0]))
print(json.dumps({"kind": kind, "same": bool(same), "fp": [hub.fingerprint, folder.fingerprint]}))
"""
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_CACHE", None)
    out = subprocess.run(
        [sys.executable, "-c", code, str(tiny_model_dir())],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["kind"] == "hub" and res["same"]
    assert res["fp"][0] == res["fp"][1]  # the snapshot's files, not "hub:…@unknown"
