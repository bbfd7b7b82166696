"""genie model info: what a model is and which files its fingerprint covers, with no load."""

import json
import shutil

from typer.testing import CliRunner

from genie_cli.main import app
from genie_plugin.diffusion.fingerprint import folder_fingerprint, loader_files
from genie_plugin.diffusion.tiny import tiny_model_dir
from genie_plugin.embedded.assets import model_dir


def _info(*args):
    res = CliRunner().invoke(app, ["model", "info", *map(str, args)])
    assert res.exit_code == 0, res.output
    return res


def test_the_embedded_model_is_described_by_its_fingerprinted_files():
    d = json.loads(_info("--json").output)
    folder = model_dir()
    assert d["fingerprint"] == folder_fingerprint(folder)
    assert [f["path"] for f in d["files"]] == [
        f.relative_to(folder).as_posix() for f in loader_files(folder)
    ]
    assert d["family"] == {"id": "sd", "name": "Stable Diffusion 1.x/2.x", "supported": True,
                           "pipeline": "StableDiffusionPipeline", "prediction": "epsilon",
                           "network": "unet", "schedulers": ["dpm++", "ddim", "euler", "lcm", "tcd"],
                           "components": ["unet", "vae", "text_encoder", "tokenizer",
                                          "scheduler"]}  # fmt: skip
    # the cost rows are the schedule plan's at the recommended sampler
    from genie_plugin.diffusion import load_generator
    from genie_plugin.diffusion.sampler import SampleItem, unet_rows

    gen = load_generator("embedded", device="cpu")
    rows = d["cost"]["rows_per_output"]["strength"]
    assert rows["genie"] == unet_rows(gen, [SampleItem("p", 0.8, 0, None)])
    assert d["sampler"]["source"] == "genie_sampler.json" and d["sampler"]["settings"]
    text = _info().output
    assert d["fingerprint"] in text and "unet/diffusion_pytorch_model.safetensors" in text


def test_other_families_and_uncached_hub_ids_are_named_not_loaded(tmp_path):
    from tests.families import tiny

    xl = tiny.saved(tiny.sdxl(), tmp_path / "sdxl")
    out = _info("--model", xl).output
    assert "Stable Diffusion XL" in out and "supported" in out and "text_encoder_2" in out
    other = tmp_path / "kandinsky"
    shutil.copytree(tiny_model_dir(), other)
    index = json.loads((other / "model_index.json").read_text())
    (other / "model_index.json").write_text(
        json.dumps({**index, "_class_name": "KandinskyV22Pipeline"})
    )
    out = _info("--model", other).output
    assert "not run by this plugin" in out and "KandinskyV22Pipeline" in out
    res = _info("--model", "nobody/not-in-cache")
    assert "not in the Hugging Face cache" in res.output
    bad = CliRunner().invoke(app, ["model", "info", "--model", str(tmp_path / "missing")])
    assert bad.exit_code == 2 and "no such file or folder" in bad.output
