"""Real checkpoints of every family, one test each, run where the weights are in the HF cache
(``pytest -m slow tests/families/test_real_weights.py``; on a GPU for SDXL, SD3 and Flux).

Each loads by hub id with the sampler its family recommends (nothing asked), and checks content,
as the SD 1.5 test does: a structured source at a low r keeps its layout, a high r departs far
from it, r = 1 draws a fresh image, and nothing decodes to a flat (NaN) image."""

from __future__ import annotations

import numpy as np
import pytest

#: case -> (hub id, LoRA hub id or None, what the family's advice must pick)
CASES = {
    "sd2-v": ("stabilityai/stable-diffusion-2-1", None, "dpm++"),
    "sdxl": ("stabilityai/stable-diffusion-xl-base-1.0", None, "dpm++"),
    "sdxl-refiner": ("stabilityai/stable-diffusion-xl-refiner-1.0", None, "dpm++"),
    "sd-turbo": ("stabilityai/sd-turbo", None, "euler"),
    "sdxl-turbo": ("stabilityai/sdxl-turbo", None, "euler"),
    "lcm": ("SimianLuo/LCM_Dreamshaper_v7", None, "lcm"),
    "lcm-lora": ("stable-diffusion-v1-5/stable-diffusion-v1-5", "latent-consistency/lcm-lora-sdv1-5",
                 "lcm"),
    "tcd-lora": ("stable-diffusion-v1-5/stable-diffusion-v1-5", "h1t/TCD-SD15-LoRA", "tcd"),
    "sd3.5": ("stabilityai/stable-diffusion-3.5-medium", None, "flow-euler"),
    "flux-schnell": ("black-forest-labs/FLUX.1-schnell", None, "flow-euler"),
    "flux-dev": ("black-forest-labs/FLUX.1-dev", None, "flow-euler"),
}  # fmt: skip


def _cached(repo: str, file: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo, file), str)


def _psnr(x, y):
    return 10 * np.log10(255.0**2 / max(np.mean((x - y) ** 2), 1e-9))


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_real_checkpoint_of_each_family_generates_with_its_recommended_sampler(case):
    from PIL import Image

    from genie_plugin.diffusion import SampleItem, load_generator

    repo, lora, scheduler = CASES[case]
    if not _cached(repo, "model_index.json"):
        pytest.skip(f"{repo} not in the HF cache")
    if (
        lora
        and not _cached(lora, "README.md")
        and not _cached(lora, "pytorch_lora_weights.safetensors")
    ):
        pytest.skip(f"{lora} not in the HF cache")
    gen = load_generator(repo, lora=[lora] if lora else ())
    assert gen.sampler.scheduler == scheduler
    n = gen.resolution
    src = Image.new("RGB", (n, n), (220, 30, 30))  # left half red, right half blue
    src.paste((30, 30, 220), (n // 2, 0, n, n))
    prompt = "a photo of a cat."
    items = [SampleItem(prompt, 0.3, 0, src), SampleItem(prompt, 0.8, 0, src)]
    if case != "sdxl-refiner":  # a refiner only refines: no text-to-image
        items.append(SampleItem(prompt, 1.0, 0))
    outs = gen.generate(items)
    a, lo, hi, *rest = (np.asarray(x, dtype=np.float64) for x in (src, *outs))
    assert all(im.size == (n, n) for im in outs)
    assert _psnr(a, lo) > 15.0 and _psnr(a, hi) < _psnr(a, lo) - 2.0
    assert min(x.std() for x in (lo, hi, *rest)) > 10.0
    if lora:
        base = load_generator(repo).with_sampler(**gen.sampler.to_dict())
        (plain,) = base.generate([SampleItem(prompt, 0.8, 0, src)])
        assert np.abs(np.asarray(plain, dtype=np.float64) - hi).mean() > 2.0  # the LoRA acts
