"""LoRA adapters (LCM-LoRA, TCD, any diffusers-format LoRA) fused into a loaded model: equal to
diffusers' own pipeline with ``load_lora_weights``, in every key, never run through a
base-weight export (issue: model families, point 1)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from genie_plugin.diffusion import load_generator
from genie_plugin.diffusion.key import generation_key
from genie_plugin.diffusion.sampler import SampleItem, sample
from genie_plugin.errors import ConfigError, ModelFormatError, ModelNotFoundError
from genie_plugin.seeding import cpu_generator
from tests.families import tiny

PROMPTS = ["a photo of a cat.", "a photo of a dog.", "a photo of a star."]
RATIOS = (0.3, 0.6, 0.9)
SEEDS = (31, 32, 33)

#: family case -> (pipeline builder, sampler settings, reference call extras)
CASES = {
    "sd": (lambda: tiny.sd(), {"steps": 10}, {}),
    "sd-lcm-lora": (lambda: tiny.sd(), {"scheduler": "lcm", "steps": 4, "guidance_scale": 1.0},
                    {}),
    "sd-tcd-lora": (lambda: tiny.sd(), {"scheduler": "tcd", "steps": 4, "guidance_scale": 1.0},
                    {"eta": 0.3}),
    "sdxl": (lambda: tiny.sdxl(), {"steps": 6}, {}),
    "flux": (lambda: tiny.flux(), {"scheduler": "flow-euler", "steps": 4, "resolution": 32,
                                   "guidance_scale": 0.0}, {}),
}  # fmt: skip

_BUILT: dict = {}


def built(case, tmp_path_factory):
    """(model folder, LoRA file) of a case, made once per session."""
    if case not in _BUILT:
        pipe = CASES[case][0]()
        root = tmp_path_factory.mktemp(f"lora-{case}")
        tiny.saved(pipe, root / "model")
        name = {"sd-lcm-lora": "lcm-lora", "sd-tcd-lora": "tcd-lora"}.get(case, "lora")
        _BUILT[case] = (root / "model", tiny.lora(pipe, root / name))
    return _BUILT[case]


def _arr(images):
    return np.stack([np.asarray(im, dtype=np.int16) for im in images])


def _reference(gen, folder, lora_file, cls_name):
    """diffusers' pipeline loaded from the folder, the LoRA loaded (not fused) its own way."""
    import diffusers

    cls = getattr(diffusers, cls_name)
    extra = {"safety_checker": None, "requires_safety_checker": False} if "StableDiffusion" in \
        cls_name and "XL" not in cls_name else {}  # fmt: skip
    pipe = cls.from_pretrained(str(folder), **extra)
    pipe.scheduler = gen.fresh_scheduler()
    pipe.load_lora_weights(str(lora_file.parent), weight_name=lora_file.name)
    return pipe


@pytest.mark.parametrize("case", list(CASES))
def test_a_fused_lora_equals_diffusers_load_lora_weights_alone_mixed_and_at_r1(
    case, images, tmp_path_factory
):
    folder, lora_file = built(case, tmp_path_factory)
    settings, extra = CASES[case][1], CASES[case][2]
    base = load_generator(str(folder), device="cpu").with_sampler(**settings)
    gen = load_generator(str(folder), device="cpu", lora=[str(lora_file)]).with_sampler(**settings)
    img2img, txt2img = gen.adapter.pipelines
    ref = _reference(gen, folder, lora_file, img2img)
    kw = {**gen.adapter.reference_kwargs(gen), **extra}
    lat = gen.adapter.encode_images(gen, images[:3])
    refs = [ref(prompt=[PROMPTS[k]], image=lat[k : k + 1], strength=r,
                num_inference_steps=gen.sampler.steps, guidance_scale=gen.sampler.guidance_scale,
                generator=[cpu_generator(SEEDS[k])], output_type="pil", **kw).images[0]
            for k, r in enumerate(RATIOS)]  # fmt: skip
    items = [SampleItem(PROMPTS[k], r, SEEDS[k], images[k]) for k, r in enumerate(RATIOS)]
    for k in range(3):
        assert int(np.abs(_arr(sample(gen, [items[k]])) - _arr([refs[k]])).max()) <= 1
    mixed = sample(gen, items)
    assert int(np.abs(_arr(mixed) - _arr(refs)).max()) <= 1
    # the adapter does something: without it the same items give other images
    assert int(np.abs(_arr(sample(base, items)) - _arr(mixed)).max()) > 8
    t2i = _reference(gen, folder, lora_file, txt2img)
    r1 = t2i(PROMPTS[0], num_inference_steps=gen.sampler.steps,
             guidance_scale=gen.sampler.guidance_scale, generator=cpu_generator(5),
             output_type="pil", **{"height": gen.resolution, "width": gen.resolution, **kw}
             ).images  # fmt: skip
    assert int(np.abs(_arr(sample(gen, [SampleItem(PROMPTS[0], 1.0, 5)])) - _arr(r1)).max()) <= 1


def test_the_adapter_and_its_scale_are_in_the_key_by_content(images, tmp_path_factory, tmp_path):
    folder, lora_file = built("sd", tmp_path_factory)
    item = SampleItem(PROMPTS[0], 0.6, 1, images[0])
    base = load_generator(str(folder), device="cpu")
    one = load_generator(str(folder), device="cpu", lora=[str(lora_file)])
    half = load_generator(str(folder), device="cpu", lora=[f"{lora_file}:0.5"])
    moved = tmp_path / "renamed.safetensors"
    shutil.copy(lora_file, moved)
    same = load_generator(str(folder), device="cpu", lora=[str(moved)])
    keys = [generation_key(g, item).digest() for g in (base, one, half, same)]
    assert len(set(keys[:3])) == 3  # base, scale 1 and scale 0.5 never share an image
    assert keys[1] == keys[3]  # the same bytes elsewhere: the same images
    rec = one.describe()["adapters"]
    assert rec[0]["sha256"] == same.adapters[0]["sha256"] and rec[0]["scale"] == 1.0
    assert one.fingerprint != base.fingerprint and "adapters" not in base.describe()


def test_lcm_and_tcd_loras_bring_their_sampler_when_none_is_asked(tmp_path_factory):
    for case, sched in (("sd-lcm-lora", "lcm"), ("sd-tcd-lora", "tcd")):
        folder, lora_file = built(case, tmp_path_factory)
        gen = load_generator(str(folder), device="cpu", lora=[str(lora_file)])
        assert (gen.sampler.scheduler, gen.sampler.steps, gen.sampler.guidance_scale) == (
            sched, 4, 1.0)  # fmt: skip
        assert not gen.adapter.guided_rows(gen)  # guidance 1: one row per item


def test_an_adapted_model_never_runs_a_base_weight_onnx_export(tmp_path_factory, tmp_path):
    pytest.importorskip("onnxruntime")
    from genie_plugin.diffusion.onnx_backend import export_dir_for, export_unet

    folder, lora_file = built("sd", tmp_path_factory)
    base = load_generator(str(folder), device="cpu")
    gen = load_generator(str(folder), device="cpu", lora=[str(lora_file)])
    assert export_dir_for(gen, False) != export_dir_for(base, False)  # its own cached export
    export_unet(base, tmp_path / "base")
    with pytest.raises(ConfigError, match="exported from another model"):
        gen.with_backend("onnx", onnx_dir=tmp_path / "base")
    (tmp_path / "base" / "genie_onnx.json").unlink()  # a graph nothing vouches for
    with pytest.raises(ConfigError, match="LoRA-fused weights"):
        gen.with_backend("onnx", onnx_dir=tmp_path / "base")


def test_bad_loras_are_refused_in_one_line(tmp_path_factory, tmp_path):
    folder, lora_file = built("sd", tmp_path_factory)
    _, xl_lora = built("sdxl", tmp_path_factory)
    bad = tmp_path / "weights.bin"
    bad.write_bytes(b"x")
    two = tmp_path / "two"
    two.mkdir()
    for n in ("a", "b"):
        shutil.copy(lora_file, two / f"{n}.safetensors")
    crafted = tmp_path / "crafted.safetensors"
    crafted.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    cases = [
        (str(bad), ModelFormatError, "is a .safetensors file"),
        (str(two), ModelFormatError, "2 .safetensors files"),
        (str(xl_lora), ModelFormatError, "not a LoRA for|none of its keys"),
        (str(crafted), ModelFormatError, "not a LoRA for|none of its keys"),
        (str(tmp_path / "missing.safetensors"), ModelNotFoundError, "not a hub id"),
        (f"{lora_file}:nan", ConfigError, "SOURCE"),
    ]
    for spec, err, msg in cases:
        with pytest.raises(err, match=msg) as exc:
            load_generator(str(folder), device="cpu", lora=[spec])
        assert "--lora" in str(exc.value) and "\n" not in str(exc.value)


def test_cli_augment_with_lora_and_sampler_flags_records_them(images, tmp_path_factory, tmp_path):
    import json

    from typer.testing import CliRunner

    from genie_cli.main import app

    folder, lora_file = built("sd-lcm-lora", tmp_path_factory)
    images[0].save(tmp_path / "src.png")
    args = ["augment", str(tmp_path / "src.png"), "--target", "star", "--strategy", "genie",
            "--model", str(folder), "--lora", f"{lora_file}:0.8", "--ratio-meaning", "level",
            "--out", str(tmp_path / "out")]  # fmt: skip
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    rec = json.loads((tmp_path / "out" / "manifest.jsonl").read_text().splitlines()[0])
    m = rec["model"]
    assert m["adapters"][0]["scale"] == 0.8 and m["fingerprint"].startswith("lora:")
    # the LCM-LoRA's advice (no --scheduler/--steps given), the flag's r meaning
    assert (m["scheduler"], m["steps"], m["ratio_meaning"]) == ("lcm", 4, "level")
    bad = CliRunner().invoke(app, [*args[:-2], "--timestep-spacing", "sideways",
                                   "--out", str(tmp_path / "o2")])  # fmt: skip
    assert bad.exit_code == 2 and "--timestep-spacing" in bad.output
