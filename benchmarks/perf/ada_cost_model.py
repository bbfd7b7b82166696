"""GeNIe-Ada's cost per output relative to GeNIe, counted in FLOPs on SD 1.5's architecture.

Not a timing: on a device where GeNIe already runs at a batch that fills it (compute-bound), the
wall-time ratio cannot go below this FLOP ratio, so it says which GeNIe-Ada variants can meet a
cost target before any GPU time is spent, and what a measured ratio should be compared with.

How: each mode's UNet rows come from the sampler's own accounting (``sampler.unet_rows``:
classifier-free guidance rows, the guidance interval, step caps and start steps as ``denoise``
runs them; tested equal to the rows a counting denoiser sees); rows, VAE encodes and decodes are
then priced with FLOPs counted by ``torch.utils.flop_counter`` on SD 1.5's UNet and VAE built on
the meta device (no weights, no download). Text encoding and the few-shot backbone (a few
GFLOP per 84 px image) are left out: under 0.1% of a GeNIe output.

    python benchmarks/perf/ada_cost_model.py [--steps 50] [--guidance 7.5] [--item-probes 4,5,6]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

ADA = (0.5, 0.6, 0.7, 0.8, 0.9)


def sd15_tflops() -> dict[str, float]:
    """TFLOP of one UNet row at 64×64 latents, one VAE encode and one decode at 512 px."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from generation_throughput import SD15_UNET, SD15_VAE
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):  # shapes only: no memory, no init time
        unet, vae = UNet2DConditionModel(**SD15_UNET), AutoencoderKL(**SD15_VAE)

    def count(fn) -> float:
        with FlopCounterMode(display=False) as fc:
            fn()
        return fc.get_total_flops() / 1e12

    z = torch.empty(1, 4, 64, 64, device="meta")
    t = torch.tensor([500], device="meta")
    ehs = torch.empty(1, 77, 768, device="meta")
    img = torch.empty(1, 3, 512, 512, device="meta")
    with torch.no_grad():
        return {
            "unet_row": count(lambda: unet(z, t, encoder_hidden_states=ehs)),
            "vae_encode": count(lambda: vae.encode(img).latent_dist.mode()),
            "vae_decode": count(lambda: vae.decode(z).sample),
        }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--guidance", type=float, default=7.5)
    ap.add_argument("--guidance-t-min", type=float, default=0.0)
    ap.add_argument("--probes", default="10", help="global coarse schedules (steps)")
    ap.add_argument("--item-probes", default="3,4,5,6,8", help="per-candidate step caps")
    ap.add_argument(
        "--r-star",
        default="0.6,0.7,0.8,0.9",
        help="r* values the outputs are regenerated at, cycled over the pairs (the rule never "
        "picks the grid's first ratio)",
    )
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()

    from PIL import Image

    from genie_plugin.bench.env import environment
    from genie_plugin.diffusion import load_generator
    from genie_plugin.diffusion.sampler import SampleItem, unet_rows
    from genie_plugin.diffusion.settings import SamplerConfig
    from genie_plugin.io import atomic_write_text

    t0 = time.time()
    flops = sd15_tflops()
    sampler = SamplerConfig(
        steps=a.steps, guidance_scale=a.guidance, guidance_t_min=a.guidance_t_min
    )
    gen = load_generator("tiny-random", device="cpu", sampler=sampler)
    r_star = [float(x) for x in a.r_star.split(",")]
    srcs = [Image.new("RGB", (64, 64), (40 * i % 256, 90, 160)) for i in range(a.pairs)]

    def count(calls) -> dict:
        rows = sum(unet_rows(g, items) for g, items in calls)
        decodes = sum(len(items) for _, items in calls)
        encodes = sum(len({id(it.source) for it in items if it.ratio < 1}) for _, items in calls)
        tf = (
            rows * flops["unet_row"] + encodes * flops["vae_encode"] + decodes * flops["vae_decode"]
        )
        n = a.pairs
        return {
            "unet_rows_per_output": rows / n,
            "vae_encodes_per_output": encodes / n,
            "vae_decodes_per_output": decodes / n,
            "tflop_per_output": round(tf / n, 2),
        }

    def cand(g):
        return g, [SampleItem("a b", r, i, s) for i, s in enumerate(srcs) for r in ADA]

    finals = (
        gen,
        [SampleItem("a b", r_star[i % len(r_star)], i, s) for i, s in enumerate(srcs)],
    )
    modes = {
        "genie": [(gen, [SampleItem("a b", 0.8, i, s) for i, s in enumerate(srcs)])],
        "genie_ada": [cand(gen)],
    }
    for p in filter(None, a.probes.split(",")):
        modes[f"genie_ada_probe_{p}"] = [cand(gen.with_sampler(steps=int(p))), finals]
    for k in filter(None, a.item_probes.split(",")):
        modes[f"genie_ada_item_probe_{k}"] = [cand(gen.with_sampler(max_item_steps=int(k))), finals]
    res = {m: count(calls) for m, calls in modes.items()}
    base = res["genie"]["tflop_per_output"]
    for r in res.values():
        r["flop_ratio_to_genie"] = round(r["tflop_per_output"] / base, 3)
    out = {
        "benchmark": "ada_cost_model",
        "what": "FLOPs per output on SD 1.5's architecture (computed, not timed)",
        "sd15_tflop": {k: round(v, 4) for k, v in flops.items()},
        "sampler": sampler.to_dict(),
        "grid": list(ADA),
        "r_star_cycle": r_star,
        "results": res,
        "seconds": round(time.time() - t0, 1),
        "environment": environment(),
    }
    if a.out:
        atomic_write_text(a.out, json.dumps(out, indent=2, sort_keys=True) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
