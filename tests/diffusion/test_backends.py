"""Timestep shift, padded (CUDA-graph) UNet calls, channels-last and --max-batch auto on the CPU;
the CUDA paths themselves are checked under the gpu marker."""

import numpy as np
import pytest
import torch

from genie_plugin.diffusion.codecs import encode_images
from genie_plugin.diffusion.sampler import SampleItem, sample, total_image_steps
from genie_plugin.errors import ConfigError, UnknownNameError
from tests.conftest import assert_same_pixels


def _arr(images):
    return np.stack([np.asarray(im, dtype=np.int16) for im in images])


def test_timestep_shift_keeps_more_of_the_source(tiny_gen, images):
    from genie_plugin.diffusion.codecs import decode_latents

    recon = _arr(decode_latents(tiny_gen, encode_images(tiny_gen, images[:2])))
    items = [SampleItem("a photo of a dog.", 0.6, 5 + i, im) for i, im in enumerate(images[:2])]
    plain = _arr(sample(tiny_gen, items))
    shifted_gen = tiny_gen.with_sampler(timestep_shift=0.1)
    shifted = _arr(sample(shifted_gen, items))
    assert np.abs(shifted - recon).mean() < np.abs(plain - recon).mean()
    # same number of steps per r, so cost and progress totals do not change
    assert total_image_steps(shifted_gen, items) == total_image_steps(tiny_gen, items)


def test_timestep_shift_batches_like_single_items(tiny_gen, images):
    gen = tiny_gen.with_sampler(timestep_shift=0.2)
    items = [
        SampleItem("a photo of a cat.", 0.5, 1, images[0]),
        SampleItem("a photo of a dog.", 1.0, 2),
        SampleItem("a photo of a cat.", 0.8, 3, images[1]),
    ]
    assert_same_pixels(_arr(sample(gen, items)), _arr([sample(gen, [it])[0] for it in items]))
    # shift 1 is diffusers' own schedule, and the cache key of unshifted runs is unchanged
    assert "timestep_shift" not in tiny_gen.describe()
    assert gen.describe()["timestep_shift"] == 0.2


def test_timestep_shift_needs_custom_timestep_scheduler(tiny_gen):
    with pytest.raises(ConfigError, match="dpm\\+\\+ or euler"):
        tiny_gen.with_sampler(scheduler="ddim", timestep_shift=0.5)
    with pytest.raises(ConfigError, match="positive"):
        tiny_gen.with_sampler(timestep_shift=0.0)
    out = sample(
        tiny_gen.with_sampler(scheduler="euler", timestep_shift=0.5),
        [SampleItem("x", 0.5, 1, _img())],
    )
    assert len(out) == 1


def _img():
    from tests.conftest import make_image

    return make_image(3)


def test_padded_denoiser_matches_the_plain_unet_call(tiny_gen):
    from genie_plugin.diffusion.conditioning import Conditioning
    from genie_plugin.diffusion.cuda_graphs import PaddedDenoiser

    c = tiny_gen.unet.config
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, c.in_channels, 8, 8, generator=g)
    t = torch.tensor([900.0, 500.0, 20.0])
    ehs = torch.randn(3, 7, c.cross_attention_dim, generator=g)
    den = PaddedDenoiser(tiny_gen.unet, max_rows=16, capture=False)
    got = den(x, t, Conditioning(text=ehs))
    ref = tiny_gen.unet(x, t, encoder_hidden_states=ehs).sample
    assert got.shape == ref.shape
    assert torch.allclose(got, ref, atol=1e-5)
    assert den.stats["padded_rows"] == 1  # 3 rows -> bucket 4
    # through the sampler: same images as the plain torch call
    items = [SampleItem("a photo of a cat.", r, 9, _img()) for r in (0.5, 0.8, 1.0)]
    assert_same_pixels(_arr(sample(tiny_gen, items)), _arr(sample(tiny_gen, items, denoiser=den)))


def test_torch_compile_backend_gives_the_same_images_with_one_compile(tiny_gen, images):
    from torch._dynamo.utils import counters

    # ratios 0.5/0.8/1.0 join the loop at different steps: the UNet batch grows 2 -> 4 -> 6 rows
    items = [SampleItem("a photo of a cat.", r, 9 + i, images[i]) for i, r in enumerate((0.5, 0.8))]
    items.append(SampleItem("a photo of a dog.", 1.0, 11))
    ref = _arr(sample(tiny_gen, items))
    g = tiny_gen.with_backend("torch-compile")
    assert g.describe()["backend"] == "torch-compile" and g.unet is tiny_gen.unet
    assert_same_pixels(_arr(g.generate(items)), ref)
    graphs = counters["stats"]["unique_graphs"]
    assert graphs >= 1
    # other batch sizes (one item: 2 rows; five: up to 10) reuse the dynamic-batch compile
    more = [SampleItem("x", r, 20 + i, images[i % 4]) for i, r in enumerate((0.3, 0.6, 0.9, 1.0))]
    assert_same_pixels(_arr(g.generate(more[:1])), _arr(sample(tiny_gen, more[:1])))
    assert_same_pixels(_arr(g.generate(items + more[1:])), _arr(sample(tiny_gen, items + more[1:])))
    assert counters["stats"]["unique_graphs"] == graphs
    assert g.denoiser.stats["calls"] > 0


def test_sample_runs_the_generators_backend(tiny_gen, images):
    from dataclasses import replace

    from genie_plugin.diffusion.loop import torch_denoiser

    rows = []
    eager = torch_denoiser(tiny_gen)

    def backend(x, t, ehs):
        rows.append(len(x))
        return eager(x, t, ehs)

    gen = replace(tiny_gen, backend="counting", denoiser=backend)
    items = [SampleItem("a photo of a cat.", 0.6, 3, images[0]), SampleItem("x", 1.0, 4)]
    # called directly or through generate, the view's backend makes every UNet call
    assert_same_pixels(_arr(sample(gen, items)), _arr(sample(tiny_gen, items)))
    assert sum(rows) == total_image_steps(gen, items) * 2  # CFG: two rows per image-step
    rows.clear()
    gen.generate(items)
    assert sum(rows) == total_image_steps(gen, items) * 2


def test_torch_compile_failure_names_the_option_and_the_fix(tiny_gen):
    from genie_plugin.diffusion.compiled import CompiledUNet

    def no_compiler(gm, example_inputs):
        raise RuntimeError("C++ compiler not found")

    den = CompiledUNet(tiny_gen.unet, compiler=no_compiler)
    with pytest.raises(
        ConfigError, match="torch-compile.*C\\+\\+ compiler not found.*--backend torch"
    ):
        sample(tiny_gen, [SampleItem("x", 1.0, 5)], denoiser=den)


def test_cuda_graph_backends_refuse_a_cpu_model(tiny_gen):
    with pytest.raises(ConfigError, match="CUDA device"):
        tiny_gen.with_backend("cuda-graphs")
    with pytest.raises(ConfigError, match="use --backend torch-compile"):
        tiny_gen.with_backend("torch-compile-cuda-graphs")
    with pytest.raises(UnknownNameError, match="unknown backend 'tensorrt'"):
        tiny_gen.with_backend("tensorrt")


def test_channels_last_gives_the_same_images(images):
    from genie_plugin.diffusion import SamplerConfig, load_generator

    gen = load_generator("tiny-random", device="cpu", sampler=SamplerConfig(steps=6))
    items = [SampleItem("a photo of a cat.", 0.7, 4, images[0]), SampleItem("x", 1.0, 5)]
    ref = _arr(sample(gen, items))
    gen.use_channels_last()
    assert gen.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert_same_pixels(_arr(sample(gen, items)), ref)


def test_max_batch_auto_on_cpu_and_bad_values(tiny_gen):
    from genie_plugin.diffusion.memory import CPU_MAX_BATCH, parse_max_batch, resolve_max_batch

    assert resolve_max_batch(tiny_gen, "auto") == CPU_MAX_BATCH
    assert resolve_max_batch(tiny_gen, "24") == 24
    assert parse_max_batch(" AUTO ") == "auto"
    for bad in ("0", "-3", "lots", "1.5"):
        with pytest.raises(ConfigError, match="max-batch"):
            parse_max_batch(bad)


gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.gpu
@gpu
def test_cuda_graphs_equal_eager_and_auto_batch_fills_the_gpu(images):
    from genie_plugin.diffusion import SamplerConfig, load_generator
    from genie_plugin.diffusion.memory import resolve_max_batch

    gen = load_generator("embedded", device="cuda", sampler=SamplerConfig(steps=20))
    items = [
        SampleItem("a photo of a star.", r, 3 + i, images[i % 4])
        for i, r in enumerate((0.5, 0.6, 0.7, 0.8, 0.9, 1.0))
    ]
    ref = _arr(sample(gen, items))
    g = gen.with_backend("cuda-graphs")
    got = _arr(sample(g, items))
    got2 = _arr(sample(g, items))  # replay path
    assert g.denoiser.stats["captures"] >= 1 and g.denoiser.stats["replays"] > 0
    assert np.abs(got - ref).max() <= 2 and np.array_equal(got, got2)
    assert resolve_max_batch(gen, "auto") > 16


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("backend", ["torch-compile", "torch-compile-cuda-graphs"])
def test_compiled_backends_on_cuda_match_eager(images, backend):
    from genie_plugin.diffusion import SamplerConfig, load_generator

    gen = load_generator("embedded", device="cuda", sampler=SamplerConfig(steps=20))
    items = [
        SampleItem("a photo of a star.", r, 3 + i, images[i % 4])
        for i, r in enumerate((0.5, 0.6, 0.7, 0.8, 0.9, 1.0))
    ]
    ref = _arr(sample(gen, items))
    g = gen.with_backend(backend)
    got = _arr(sample(g, items))
    got2 = _arr(sample(g, items))  # compiled (and, with graphs, replayed) again
    assert np.abs(got - ref).max() <= 2 and np.array_equal(got, got2)
    st = g.denoiser.stats  # the backend made the calls: CompiledUNet or the graph replayer
    assert st.get("calls", 0) + st.get("replays", 0) > 0


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("backend", ["onnx", "onnx-cuda-graphs"])
def test_onnx_backends_on_cuda_match_torch(images, backend):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("needs onnxruntime-gpu")
    from genie_plugin.diffusion import SamplerConfig, load_generator

    gen = load_generator("embedded", device="cuda", sampler=SamplerConfig(steps=20))
    items = [
        SampleItem("a photo of a star.", r, 3 + i, images[i % 4])
        for i, r in enumerate((0.5, 0.7, 0.9, 1.0))
    ]
    ref = _arr(sample(gen, items)).astype(np.float64)
    got = _arr(sample(gen.with_backend(backend), items)).astype(np.float64)
    psnr = 10 * np.log10(255**2 / max(np.mean((got - ref) ** 2), 1e-12))
    assert psnr >= 35, psnr


def test_guidance_interval_drops_cfg_below_its_floor_only(tiny_gen, images):
    items = [
        SampleItem("a photo of a cat.", 0.4, 1, images[0]),  # starts at t ~ 400
        SampleItem("a photo of a dog.", 1.0, 2),
    ]
    calls = []

    def counting(unet):
        from genie_plugin.diffusion.loop import torch_denoiser

        inner = torch_denoiser(unet)

        def call(x, t, ehs):
            calls.append((float(t[0]), len(x)))
            return inner(x, t, ehs)

        return call

    gen = tiny_gen.with_sampler(guidance_scale=5.0, guidance_t_min=0.5)
    out = _arr(sample(gen, items, denoiser=counting(tiny_gen)))
    # At t >= 500 only the r = 1 item runs, with CFG: 2 rows (1 without). Below, both items
    # run without CFG: 2 rows (4 with).
    high = [rows for t, rows in calls if t >= 500]
    low = [rows for t, rows in calls if t < 500]
    assert high and low and set(high) == {2} and set(low) == {2}
    # the r = 0.4 item never sees t >= 500: it is exactly the unguided output
    no_cfg = tiny_gen.with_sampler(guidance_scale=1.0)
    assert_same_pixels(out[:1], _arr(sample(no_cfg, items[:1])))
    full = _arr(sample(tiny_gen.with_sampler(guidance_scale=5.0), items[1:]))
    assert not np.array_equal(out[1:], full) and not np.array_equal(
        out[1:], _arr(sample(no_cfg, items[1:]))
    )
    # batching does not change results; 0 keeps cache keys as they were
    assert_same_pixels(out, _arr([sample(gen, [it])[0] for it in items]))
    assert "guidance_t_min" not in tiny_gen.describe()
    assert gen.describe()["guidance_t_min"] == 0.5
    with pytest.raises(ConfigError, match="guidance_t_min"):
        tiny_gen.with_sampler(guidance_t_min=1.0)


def test_the_backend_registry_is_the_one_list():
    """Every backend is one record: its maker resolves, the help, the checks, auto's
    candidates and the lazy loader all read it."""
    import importlib

    from genie_plugin.backends import REGISTRY, help_text
    from genie_plugin.diffusion.auto import candidates
    from genie_plugin.diffusion.lazy import LAZY_BACKENDS
    from genie_plugin.diffusion.model import BACKENDS, check_backend
    from genie_plugin.errors import UnknownNameError

    assert list(BACKENDS) == list(REGISTRY) and "auto" in REGISTRY
    for name, b in REGISTRY.items():
        assert check_backend(name) == name and f"{name} (" in help_text()
        if b.make:
            module, _, func = b.make.partition(":")
            assert callable(getattr(importlib.import_module(module), func)), b.make
    assert LAZY_BACKENDS == ("torch", "onnx")
    names, skipped = candidates("cpu")
    assert names[0] == "torch" and "cuda-graphs" in skipped
    assert set(names) <= {n for n, b in REGISTRY.items() if b.auto_candidate and not b.needs_cuda}
    with pytest.raises(UnknownNameError, match="choose one of: torch, cuda-graphs"):
        check_backend("tensorrt")
