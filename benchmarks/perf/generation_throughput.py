"""Hard negatives per second: GeNIe, GeNIe-Ada (batched, naive sweep, probe) and Text2Image.

Every mode goes through the project's sampler (``DiffusionGenerator.generate``): text encoding,
VAE encode, the denoising loop with classifier-free guidance, VAE decode. GeNIe-Ada *batched*
puts all five candidates of every pair into one pass (items join at their own start step, one
ε per pair); *naive* runs one generation per grid ratio, as a sweep does; *fast*
(``genie_ada_fast``) samples the candidates on a ``--probe-steps`` schedule and *lite*
(``genie_ada_lite``) with ``--probe-item-steps`` solver steps each, then the output at r* with
the full steps (r* cycles over 0.6…0.9 here: random weights give no meaningful pick, and the rule
never picks the grid's first ratio). The backbone pass that picks r* is not timed (5 small-image
forward passes per output).

``--per-pair`` generates each output in its own call (GeNIe: one item; GeNIe-Ada: its five
candidates together), the latency view in which a GPU is far from full for GeNIe and batching
the candidates is nearly free; the default packs all outputs of a mode into one job (throughput).

    python benchmarks/perf/generation_throughput.py --arch sd15 --device cuda   # random SD 1.5
    python benchmarks/perf/generation_throughput.py --model PATH_OR_HUB_ID --device cuda
    python benchmarks/perf/generation_throughput.py --arch tiny --device cpu --outputs 4  # smoke

Speed does not depend on weight values, so random SD 1.5-architecture weights give the real
cost. Writes JSON (figures, ratios, environment) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

ADA = (0.5, 0.6, 0.7, 0.8, 0.9)
GFLOP_PER_IMAGE_STEP_SD15 = 803.0  # UNet at 64×64 latents (issue: ONNX/throughput)
SD15_UNET = dict(
    sample_size=64,
    cross_attention_dim=768,
    attention_head_dim=8,
    block_out_channels=(320, 640, 1280, 1280),
    layers_per_block=2,
)
SD15_VAE = dict(
    block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    layers_per_block=2,
    latent_channels=4,
    sample_size=512,
)


def sd15_generator(device: str, dtype, seed: int = 0):
    """SD 1.5's component architecture with seeded random weights (no download)."""
    import tempfile

    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from genie_plugin.diffusion.model import DiffusionGenerator
    from genie_plugin.diffusion.tiny import write_char_tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        vocab = write_char_tokenizer(Path(tmp))
        tok = CLIPTokenizer.from_pretrained(tmp)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(**SD15_UNET)
        vae = AutoencoderKL(**SD15_VAE)
        te = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=vocab,
                bos_token_id=vocab - 2,
                eos_token_id=vocab - 1,
                pad_token_id=vocab - 1,
                hidden_size=768,
                intermediate_size=3072,
                num_attention_heads=12,
                num_hidden_layers=12,
                max_position_embeddings=77,
            )
        )
    sched = {
        "_class_name": "DPMSolverMultistepScheduler",
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "num_train_timesteps": 1000,
        "steps_offset": 1,
        "timestep_spacing": "linspace",
    }
    from diffusers import DPMSolverMultistepScheduler

    for m in (te, vae, unet):
        m.to(device=device, dtype=dtype).eval().requires_grad_(False)
    return DiffusionGenerator(
        name="random-sd15-architecture",
        fingerprint="random",
        tokenizer=tok,
        text_encoder=te,
        vae=vae,
        unet=unet,
        scheduler_config=DPMSolverMultistepScheduler.from_config(sched).config,
        device=torch.device(device),
        dtype=dtype,
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--arch", choices=("sd15", "tiny"), default="sd15")
    ap.add_argument("--model", default=None, help="real checkpoint (hub id, folder, file)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--fp32", action="store_true")
    ap.add_argument("--outputs", type=int, default=32, help="hard negatives per mode")
    ap.add_argument(
        "--max-batch", default="64", help="sampler items per UNet batch, or auto (fills the GPU)"
    )
    ap.add_argument("--channels-last", action="store_true", help="UNet and VAE channels-last")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--guidance", type=float, default=7.5)
    ap.add_argument(
        "--modes",
        default="genie,genie_ada_batched,genie_ada_naive,genie_ada_fast,genie_ada_lite,text2image",
    )
    ap.add_argument("--probe-steps", type=int, default=10, help="genie_ada_fast's probe")
    ap.add_argument(
        "--probe-item-steps", type=int, default=5, help="genie_ada_lite's steps per candidate"
    )
    ap.add_argument(
        "--per-pair", action="store_true", help="one call per output (latency), not one job"
    )
    ap.add_argument(
        "--backends",
        default="torch",
        help="comma list, same run: torch, cuda-graphs, torch-compile, "
        "torch-compile-cuda-graphs, onnx, onnx-cuda-graphs",
    )
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()

    import numpy as np
    import torch
    from PIL import Image

    from genie_plugin.bench.env import environment
    from genie_plugin.core.batching import graph_buckets
    from genie_plugin.diffusion import SamplerConfig, load_generator
    from genie_plugin.diffusion.sampler import SampleItem, unet_rows
    from genie_plugin.seeding import stable_seed

    dtype = torch.float32 if a.fp32 or a.device == "cpu" else torch.float16
    sampler = SamplerConfig(steps=a.steps, guidance_scale=a.guidance)
    if a.model:
        gen = load_generator(a.model, device=a.device, sampler=sampler)
    elif a.arch == "sd15":
        gen = sd15_generator(a.device, dtype).with_sampler(steps=a.steps, guidance_scale=a.guidance)
    else:
        gen = load_generator("tiny-random", device=a.device, sampler=sampler)
    if a.channels_last:
        gen.use_channels_last()
    from genie_plugin.diffusion.memory import resolve_max_batch

    a.max_batch = resolve_max_batch(gen, a.max_batch)
    print("max batch", a.max_batch, flush=True)
    res = gen.resolution
    rng = np.random.default_rng(0)
    sources = [
        Image.fromarray(rng.integers(0, 256, (res, res, 3), dtype=np.uint8)) for _ in range(8)
    ]
    classes = ["golden retriever", "school bus", "hourglass", "vase", "lion"]

    def pair(i):
        return (
            sources[i % len(sources)],
            f"a photo of a {classes[i % len(classes)]}.",
            stable_seed(0, "perf", i),
        )

    def items_for(mode, g, idx):
        """(generator, items) calls that make one hard negative per pair index in ``idx``."""
        pairs = [pair(i) for i in idx]
        if mode == "genie":
            return [(g, [SampleItem(p, 0.8, s, src) for src, p, s in pairs])]
        if mode == "text2image":
            return [(g, [SampleItem(p, 1.0, s, None) for src, p, s in pairs])]
        if mode == "genie_ada_batched":
            return [(g, [SampleItem(p, r, s, src) for src, p, s in pairs for r in ADA])]
        if mode == "genie_ada_naive":
            return [(g, [SampleItem(p, r, s, src) for src, p, s in pairs]) for r in ADA]
        if mode in ("genie_ada_fast", "genie_ada_lite"):
            if mode == "genie_ada_fast":
                probe = g.with_sampler(steps=a.probe_steps)
            else:
                probe = g.with_sampler(max_item_steps=a.probe_item_steps)
            cand = [SampleItem(p, r, s, src) for src, p, s in pairs for r in ADA]
            final = [
                SampleItem(p, ADA[1 + i % (len(ADA) - 1)], s, src)
                for i, (src, p, s) in zip(idx, pairs, strict=True)
            ]
            return [(probe, cand), (g, final)]
        raise SystemExit(f"unknown mode {mode}")

    def calls_for(mode, g):
        if a.per_pair:
            return [c for i in range(a.outputs) for c in items_for(mode, g, [i])]
        return items_for(mode, g, range(a.outputs))

    def sync():
        if torch.device(a.device).type == "cuda":
            torch.cuda.synchronize()

    def run_backend(gen) -> dict:
        # warm-up: kernels, cuDNN autotuning, allocator, onnxruntime sessions, then every batch
        # size a loop can reach (2, 4, ... 2 * max batch UNet rows: torch.compile's batch ranges,
        # CUDA-graph buckets), so compiles and captures are not timed
        gen.generate(items_for("genie", gen, range(min(4, a.outputs)))[0][1], max_batch=a.max_batch)
        short = gen.with_sampler(steps=2)
        for n in graph_buckets(a.max_batch):  # 1, 2, 4, ... items, and max batch itself
            short.generate(items_for("text2image", short, range(n))[0][1], max_batch=a.max_batch)
        results = {}
        for mode in a.modes.split(","):
            calls = calls_for(mode, gen)
            sync()
            t0 = time.perf_counter()
            for g, items in calls:
                g.generate(items, max_batch=a.max_batch)
            sync()
            dt = time.perf_counter() - t0
            # UNet rows: classifier-free guidance runs two per image-step
            unet_image_steps = sum(unet_rows(g, items) for g, items in calls)
            results[mode] = {
                "outputs": a.outputs,
                "seconds": round(dt, 3),
                "seconds_per_output": round(dt / a.outputs, 4),
                "outputs_per_s": round(a.outputs / dt, 3),
                "unet_image_steps": unet_image_steps,
                "unet_image_steps_per_s": round(unet_image_steps / dt, 1),
            }
            print(gen.backend, mode, results[mode], flush=True)
        return results

    all_results, ratios, flop, errors, warmup = {}, {}, {}, {}, {}
    base = gen
    for backend in a.backends.split(","):
        t0 = time.perf_counter()
        try:
            gen = base if backend == "torch" else base.with_backend(backend)
            results = all_results[backend] = run_backend(gen)
        except Exception as exc:  # noqa: BLE001 - a backend that fails here is a result
            errors[backend] = f"{type(exc).__name__}: {exc}"[:500]
            print(backend, "failed:", errors[backend], flush=True)
            continue
        timed = sum(r["seconds"] for r in results.values())
        warmup[backend] = round(time.perf_counter() - t0 - timed, 1)  # incl. compiles/captures
        if "genie" in results:
            g = results["genie"]["seconds_per_output"]
            others = ("genie_ada_batched", "genie_ada_naive", "genie_ada_fast", "genie_ada_lite")
            for m in (*others, "text2image"):
                if m in results:
                    ratios[f"{backend}:{m}_over_genie"] = round(
                        results[m]["seconds_per_output"] / g, 3
                    )
            if a.arch == "sd15" and not a.model:
                tf = results["genie"]["unet_image_steps_per_s"] * GFLOP_PER_IMAGE_STEP_SD15 / 1e3
                flop[f"{backend}:genie_unet_tflops"] = round(tf, 1)
    for other in all_results:
        if other == "torch" or "torch" not in all_results:
            continue
        for m, r in all_results[other].items():
            if m in all_results["torch"]:  # < 1: faster than torch eager, same run
                ratios[f"{other}_over_torch:{m}"] = round(
                    r["seconds"] / all_results["torch"][m]["seconds"], 3
                )
    results = all_results
    out = {
        "benchmark": "generation_throughput",
        "model": a.model or a.arch,
        "device": a.device,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "dtype": str(dtype).replace("torch.", ""),
        "backends": a.backends.split(","),
        "sampler": gen.sampler.to_dict(),
        "resolution": res,
        "max_batch": a.max_batch,
        "channels_last": a.channels_last,
        "per_pair": a.per_pair,
        "probe_steps": a.probe_steps,
        "probe_item_steps": a.probe_item_steps,
        "results": results,
        "errors": errors,
        "warmup_s": warmup,
        "ratios": ratios,
        "flops": flop,
        "environment": environment(),
    }
    text = json.dumps(out, indent=2, sort_keys=True) + "\n"
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text)
    print(json.dumps({"ratios": ratios, "flops": flop}))


if __name__ == "__main__":
    main()
