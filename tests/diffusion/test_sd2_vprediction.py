"""SD 2.x (v-prediction) through the same batched sampler: equal to diffusers' own img2img
pipeline at strength = r for every scheduler, each r alone and all r mixed in one batch, and
to its text-to-image pipeline at r = 1 (issue: model families; SD 2.x worked, now it is kept)."""

import json
import shutil

import numpy as np
import pytest

from genie_plugin.diffusion import load_generator
from genie_plugin.diffusion.codecs import encode_images
from genie_plugin.diffusion.sampler import SampleItem, sample
from genie_plugin.diffusion.tiny import tiny_model_dir
from genie_plugin.seeding import cpu_generator
from tests.diffusion.test_sampler import _arr, _pipeline

PROMPTS = ["a photo of a cat.", "a photo of a dog.", "a photo of a star."]


@pytest.fixture(scope="module")
def vpred(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sd2") / "tiny-v"
    shutil.copytree(tiny_model_dir(), folder)
    cfg = folder / "scheduler" / "scheduler_config.json"
    cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "prediction_type": "v_prediction"}))
    gen = load_generator(str(folder), device="cpu")
    assert gen.scheduler_config["prediction_type"] == "v_prediction"
    return gen


def _img2img(gen, images, ratio, seeds, prompts):
    from diffusers import StableDiffusionImg2ImgPipeline

    pipe = _pipeline(gen, StableDiffusionImg2ImgPipeline)
    assert pipe.scheduler.config.prediction_type == "v_prediction"
    return pipe(
        prompt=prompts, image=encode_images(gen, images[: len(seeds)]),
        strength=ratio, num_inference_steps=gen.sampler.steps,
        guidance_scale=gen.sampler.guidance_scale,
        generator=[cpu_generator(s) for s in seeds], output_type="pil",
    ).images  # fmt: skip


@pytest.mark.parametrize("scheduler", ["dpm++", "ddim", "euler"])
def test_v_prediction_equals_diffusers_img2img_alone_and_mixed(vpred, images, scheduler):
    gen = vpred.with_sampler(scheduler=scheduler)
    ratios, seeds = (0.3, 0.6, 0.9), [21, 22, 23]
    refs = [
        _img2img(gen, images[k : k + 1], r, [seeds[k]], [PROMPTS[k]])[0]
        for k, r in enumerate(ratios)
    ]
    for k, r in enumerate(ratios):  # each r alone
        ours = sample(gen, [SampleItem(PROMPTS[k], r, seeds[k], images[k])])
        assert np.abs(_arr(ours) - _arr([refs[k]])).max() <= 1, (scheduler, r)
    mixed = sample(gen, [SampleItem(PROMPTS[k], r, seeds[k], images[k])
                         for k, r in enumerate(ratios)])  # fmt: skip
    assert np.abs(_arr(mixed) - _arr(refs)).max() <= 1, scheduler


def test_v_prediction_ratio_one_equals_text_to_image(vpred):
    from diffusers import StableDiffusionPipeline

    ours = sample(vpred, [SampleItem(PROMPTS[0], 1.0, 5)])
    ref = _pipeline(vpred, StableDiffusionPipeline)(
        PROMPTS[0], num_inference_steps=vpred.sampler.steps, guidance_scale=7.5,
        generator=cpu_generator(5), height=vpred.resolution, width=vpred.resolution,
    ).images  # fmt: skip
    assert np.abs(_arr(ours) - _arr(ref)).max() <= 1
