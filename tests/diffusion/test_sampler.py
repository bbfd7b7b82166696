"""The batched sampler against diffusers' own pipelines, and batching/seed invariances."""

import numpy as np
import pytest
import torch

from genie_plugin.diffusion.codecs import encode_images
from genie_plugin.diffusion.sampler import SampleItem, sample, total_image_steps
from genie_plugin.errors import ConfigError
from genie_plugin.seeding import cpu_generator
from tests.conftest import assert_same_pixels


def _arr(images):
    return np.stack([np.asarray(im, dtype=np.int16) for im in images])


def _pipeline(gen, cls):
    from genie_plugin.diffusion.schedulers import make_scheduler

    return cls(
        vae=gen.vae,
        text_encoder=gen.text_encoder,
        tokenizer=gen.tokenizer,
        unet=gen.unet,
        scheduler=make_scheduler(gen.sampler.scheduler, gen.scheduler_config),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


@pytest.mark.parametrize("scheduler", ["dpm++", "ddim", "euler"])
@pytest.mark.parametrize("ratio", [0.3, 0.8])
def test_uniform_ratio_equals_diffusers_img2img(tiny_gen, images, scheduler, ratio):
    from diffusers import StableDiffusionImg2ImgPipeline

    gen = tiny_gen.with_sampler(scheduler=scheduler)
    seeds = [11, 12]
    prompts = ["a photo of a cat.", "a photo of a dog."]
    ours = sample(
        gen, [SampleItem(p, ratio, s, im) for p, s, im in zip(prompts, seeds, images, strict=False)]
    )
    pipe = _pipeline(gen, StableDiffusionImg2ImgPipeline)
    # Our documented difference: the source latent is the VAE *mode* (reference code), so we
    # hand diffusers the same latents (a 4-channel "image" is used as latents as is).
    latents = encode_images(gen, images[:2])
    ref = pipe(
        prompt=prompts,
        image=latents,
        strength=ratio,
        num_inference_steps=gen.sampler.steps,
        guidance_scale=gen.sampler.guidance_scale,
        generator=[cpu_generator(s) for s in seeds],
        output_type="pil",
    ).images
    # at most one uint8 level (float op order inside DDIM's step differs from the pipeline's)
    assert np.abs(_arr(ours) - _arr(ref)).max() <= 1


def test_source_encoding_equals_the_img2img_pipelines(tiny_gen, images):
    """The path the test above hands over as latents: our preprocessing and VAE encode equal
    the img2img pipeline's image processor and ``retrieve_latents`` with the latent *mode*
    (``sample_mode="argmax"``, the reference code's choice), so only that choice differs."""
    from diffusers import StableDiffusionImg2ImgPipeline
    from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img import (
        retrieve_latents,
    )

    pipe = _pipeline(tiny_gen, StableDiffusionImg2ImgPipeline)
    size = tiny_gen.resolution
    srcs = [im.resize((size, size)) for im in images[:2]]
    x = pipe.image_processor.preprocess(srcs).to(tiny_gen.vae.dtype)
    ref = retrieve_latents(tiny_gen.vae.encode(x), sample_mode="argmax")
    ref = ref * tiny_gen.vae.config.scaling_factor
    ours = encode_images(tiny_gen, srcs)
    assert ours.shape == ref.shape
    assert torch.allclose(ours, ref, atol=1e-5, rtol=0)
    # and a source of another size is resized and centre-cropped first, not stretched
    wide = images[0].resize((2 * size, size))
    assert encode_images(tiny_gen, [wide]).shape == ref[:1].shape


def test_ratio_one_equals_text_to_image_pipeline(tiny_gen):
    from diffusers import StableDiffusionPipeline

    ours = sample(tiny_gen, [SampleItem("a photo of a cat.", 1.0, 5)])
    pipe = _pipeline(tiny_gen, StableDiffusionPipeline)
    ref = pipe(
        "a photo of a cat.",
        num_inference_steps=tiny_gen.sampler.steps,
        guidance_scale=7.5,
        generator=cpu_generator(5),
        height=tiny_gen.resolution,
        width=tiny_gen.resolution,
    ).images
    assert_same_pixels(_arr(ours), _arr(ref))


def test_mixed_ratios_in_one_batch_equal_each_item_alone(tiny_gen, images):
    items = [
        SampleItem("a photo of a cat.", 0.5, 1, images[0]),
        SampleItem("a photo of a dog.", 0.8, 2, images[1]),
        SampleItem("a photo of a cat.", 1.0, 3),
        SampleItem("a photo of a bird.", 0.3, 4, images[2]),
        SampleItem("a photo of a dog.", 0.8, 5, images[3]),
    ]
    batched = _arr(sample(tiny_gen, items, max_batch=8))
    alone = _arr([sample(tiny_gen, [it])[0] for it in items])
    assert_same_pixels(batched, alone)
    # and order/chunking does not matter
    rev = _arr(sample(tiny_gen, items[::-1], max_batch=2))[::-1]
    assert_same_pixels(batched, rev)


def test_same_seed_identical_bytes_different_seed_differs(tiny_gen, images):
    a = sample(tiny_gen, [SampleItem("a photo of a cat.", 0.8, 7, images[0])])[0]
    b = sample(tiny_gen, [SampleItem("a photo of a cat.", 0.8, 7, images[0])])[0]
    c = sample(tiny_gen, [SampleItem("a photo of a cat.", 0.8, 8, images[0])])[0]
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()


def test_low_ratio_stays_closer_to_source_than_high(tiny_gen, images):
    from genie_plugin.diffusion.codecs import decode_latents

    recon = _arr(decode_latents(tiny_gen, encode_images(tiny_gen, images[:1])))[0]
    lo, hi = _arr(sample(tiny_gen, [SampleItem("x", r, 3, images[0]) for r in (0.2, 1.0)]))
    assert np.abs(lo - recon).mean() < np.abs(hi - recon).mean()


def test_progress_counts_image_steps(tiny_gen, images):
    items = [SampleItem("x", 0.5, 1, images[0]), SampleItem("x", 1.0, 2)]
    done = []
    sample(tiny_gen, items, progress=done.append)
    assert sum(done) == total_image_steps(tiny_gen, items) == 5 + 10


def test_outputs_are_real_images_not_decoded_nans(tiny_gen, images):
    """A NaN or inf anywhere in the loop decodes to one flat colour (NaN pixels become 0):
    a real output is RGB at the model's size and varies across pixels and channels."""
    out = sample(tiny_gen, [SampleItem("x", 0.8, 1, images[0])])[0]
    arr = np.asarray(out)
    assert out.mode == "RGB" and out.size == (tiny_gen.resolution,) * 2
    assert arr.std() > 1.0 and len(np.unique(arr.reshape(-1, 3), axis=0)) > 10

    def nan_unet(sample_, t, text_rows):
        return torch.full_like(sample_, float("nan"))

    broken = np.asarray(
        sample(tiny_gen, [SampleItem("x", 0.8, 1, images[0])], denoiser=nan_unet)[0]
    )
    assert broken.std() == 0.0  # what the assertions above are there to catch


def test_bad_items(tiny_gen, images):
    with pytest.raises(ConfigError, match="needs a source"):
        sample(tiny_gen, [SampleItem("x", 0.5, 1)])
    with pytest.raises(ConfigError):
        sample(tiny_gen, [SampleItem("x", 1.5, 1, images[0])])
    with pytest.raises(ConfigError, match="no denoising step"):
        sample(tiny_gen, [SampleItem("x", 0.05, 1, images[0])])


def test_noise_is_drawn_on_cpu_per_item(tiny_gen):
    # noise for an item depends only on its seed: same as a direct CPU draw
    from genie_plugin.diffusion.loop import _noise

    n = _noise(3, (1, 4, 16, 16), torch.device("cpu"), torch.float32)
    assert torch.equal(n, torch.randn((1, 4, 16, 16), generator=cpu_generator(3)))


def test_max_item_steps_one_step_lands_on_x0_predicted_from_the_full_schedules_start(tiny_gen):
    """A capped item starts at exactly the noise level (and ε) of the uncapped run: with one
    solver step, DPM-Solver++ returns the x0 prediction made at that start."""
    from genie_plugin.core.schedule import start_index
    from genie_plugin.diffusion.conditioning import Conditioning
    from genie_plugin.diffusion.loop import _noise, denoise
    from genie_plugin.diffusion.schedulers import make_scheduler

    gen = tiny_gen.with_sampler(max_item_steps=1, guidance_scale=3.0)
    c, h = gen.unet.config.in_channels, gen.resolution // gen.vae_scale_factor
    src = torch.randn((1, c, h, h), generator=cpu_generator(0))
    ehs = torch.zeros((1, 77, gen.text_encoder.config.hidden_size))
    eps_of = lambda x, t, e: 0.25 * x + 1e-3 * t.reshape(-1, 1, 1, 1)  # noqa: E731
    seen = []
    out = denoise(
        gen,
        [SampleItem("p", 0.6, 9, None)],
        source_latents={0: src},
        text={"p": Conditioning(text=ehs)},
        uncond=Conditioning(text=ehs),
        denoiser=lambda x, t, e: seen.append(t.clone()) or eps_of(x, t, e),
        progress=None,
    )
    full = make_scheduler("dpm++", gen.scheduler_config)
    full.set_timesteps(gen.sampler.steps)
    t0 = int(full.timesteps[start_index(gen.sampler.steps, 0.6)])
    assert len(seen) == 1 and {int(t) for t in seen[0]} == {t0}  # one call, at the full start
    a = full.alphas_cumprod[t0]
    x_t = a.sqrt() * src + (1 - a).sqrt() * _noise(9, src.shape, "cpu", torch.float32)
    eps = eps_of(x_t, torch.tensor([t0]), None)
    x0 = (x_t - (1 - a).sqrt() * eps) / a.sqrt()
    torch.testing.assert_close(out, x0, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("scheduler", ["dpm++", "euler"])
def test_max_item_steps_mixed_ratios_in_one_batch_equal_each_item_alone(
    tiny_gen, images, scheduler
):
    # capped groups run at different timesteps inside one UNet call (per-row t)
    tiny_gen = tiny_gen.with_sampler(scheduler=scheduler)
    gen = tiny_gen.with_sampler(max_item_steps=3, guidance_t_min=0.5)
    items = [
        SampleItem("a photo of a cat.", r, 7, images[0]) for r in (0.5, 0.6, 0.7, 0.8, 0.9)
    ] + [
        SampleItem("a photo of a dog.", 1.0, 3),
        SampleItem("a photo of a dog.", 0.2, 4, images[1]),
    ]
    batched = _arr(sample(gen, items, max_batch=8))
    alone = _arr([sample(gen, [it])[0] for it in items])
    assert_same_pixels(batched, alone)
    assert len({im.tobytes() for im in batched[:5]}) == 5  # nearby ratios stay distinct
    # a cap at or above an item's remaining steps changes nothing, and leaves cache keys alone
    wide = tiny_gen.with_sampler(max_item_steps=tiny_gen.sampler.steps)
    assert wide.sampler.to_dict() == tiny_gen.sampler.to_dict()
    it = SampleItem("a photo of a cat.", 0.2, 7, images[0])  # 2 steps left, cap 3
    assert_same_pixels(
        _arr(sample(gen.with_sampler(guidance_t_min=0.0), [it])), _arr(sample(tiny_gen, [it]))
    )


def test_total_image_steps_counts_unet_rows_with_caps_and_guidance_interval(tiny_gen, images):
    from genie_plugin.diffusion.loop import torch_denoiser
    from genie_plugin.diffusion.sampler import unet_rows

    items = [SampleItem("x", r, 1, images[0]) for r in (0.3, 0.6, 0.9)] + [SampleItem("x", 1.0, 2)]
    for change in ({}, {"max_item_steps": 2}, {"max_item_steps": 4, "guidance_t_min": 0.4}):
        gen = tiny_gen.with_sampler(**change)
        rows, done, inner = [], [], torch_denoiser(gen)
        count = lambda x, t, e, rows=rows, inner=inner: rows.append(t) or inner(x, t, e)  # noqa: E731
        sample(gen, items, progress=done.append, denoiser=count)
        assert sum(done) == total_image_steps(gen, items)
        cap = change.get("max_item_steps", 10)
        assert total_image_steps(gen, items) == sum(min(n, cap) for n in (3, 6, 9, 10))
        t_min = 1000 * change.get("guidance_t_min", 0.0)
        uncond = sum(len(t) for t in rows) - sum(done)  # CFG's extra rows
        assert 2 * uncond == sum(int((t >= t_min).sum()) for t in rows)  # only at t >= floor
        assert 0 < uncond <= sum(done)
        assert (uncond == sum(done)) == (t_min == 0)
        assert unet_rows(gen, items) == sum(len(t) for t in rows)  # the cost, counted ahead


def test_max_item_steps_validation(tiny_gen):
    for bad in (0, True, 2.5, "3"):
        with pytest.raises(ConfigError, match="max_item_steps"):
            tiny_gen.with_sampler(max_item_steps=bad)
    with pytest.raises(ConfigError, match="max_item_steps needs a scheduler"):
        tiny_gen.with_sampler(scheduler="ddim", max_item_steps=3)


def test_chunks_group_items_of_similar_length_so_unet_calls_stay_full(tiny_gen, images):
    """GeNIe-Ada's grid in chunks of 8: sorted by steps to run, the chunks are {0.9, 0.8},
    {0.7, 0.6}, {0.5} × 4 pairs -> 9 + 7 + 5 UNet calls (pair by pair it would be 3 × 9, the
    early calls holding only the late starters); same images either way."""
    from genie_plugin.diffusion.loop import torch_denoiser

    items = [SampleItem("x", r, p, images[p]) for p in range(4) for r in (0.5, 0.6, 0.7, 0.8, 0.9)]
    inner, calls = torch_denoiser(tiny_gen), []
    out = sample(
        tiny_gen,
        items,
        max_batch=8,
        denoiser=lambda x, t, e: calls.append(len(x)) or inner(x, t, e),
    )
    assert len(calls) == 9 + 7 + 5
    assert min(calls) == 2 * 4  # never fewer than one ratio's 4 items (two CFG rows each)
    assert_same_pixels(_arr(out), _arr(sample(tiny_gen, items, max_batch=len(items))))
