"""UNet image-steps per second: torch eager, torch + CUDA graph, torch.compile (plain and
replayed from CUDA graphs), ONNX plain / optimised / + CUDA graph, at several batch sizes, in
one run (ratios to torch eager, fraction of the FLOP limit, GPU name and versions in the JSON).

    python benchmarks/perf/unet_throughput.py --arch sd15 --device cuda --out R.json
    python benchmarks/perf/unet_throughput.py --arch tiny --device cpu --batches 2 --iters 3  # smoke

Random weights (speed does not depend on them) or ``--model`` for a real checkpoint's UNet.
One "image-step" is one UNet row (a CFG step of one image is two rows); its GFLOP are counted
on the UNet itself (SD 1.5 at 64×64 latents: about 803) and the text rows have the model's own
padded prompt length (77 for SD; 16 for the embedded model).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def build_unet(arch: str, model: str | None, device, dtype):
    """(UNet, prompt tokens it is called with): a real model's padded prompt length, else 77."""
    import torch
    from diffusers import UNet2DConditionModel

    if model:
        from genie_plugin.diffusion import load_generator

        gen = load_generator(model, device=device)
        n_tok = getattr(gen.tokenizer, "model_max_length", 77)
        n_tok = n_tok if isinstance(n_tok, int) and 0 < n_tok <= 512 else 77
        return gen.unet.to(device, dtype), n_tok
    cfg = {
        "sd15": dict(cross_attention_dim=768, attention_head_dim=8),
        "sd21": dict(
            cross_attention_dim=1024,
            attention_head_dim=(5, 10, 20, 20),
            use_linear_projection=True,
        ),
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        if arch == "tiny":
            from genie_plugin.diffusion.tiny import build_tiny_pipeline

            unet = build_tiny_pipeline().unet
        else:
            unet = UNet2DConditionModel(
                sample_size=64,
                block_out_channels=(320, 640, 1280, 1280),
                layers_per_block=2,
                **cfg[arch],
            )
    return unet.to(device, dtype).eval().requires_grad_(False), 77


def gflop_per_row(unet, tokens: int, device, dtype) -> float:
    """GFLOP of one UNet row, counted by torch's FLOP counter on this UNet (convolutions and
    matmuls)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    c = unet.config
    s = int(c.sample_size)
    x = torch.zeros(2, c.in_channels, s, s, device=device, dtype=dtype)
    ehs = torch.zeros(2, tokens, c.cross_attention_dim, device=device, dtype=dtype)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        unet(x, torch.full((2,), 500.0, device=device), encoder_hidden_states=ehs)
    return fc.get_total_flops() / 2 / 1e9


def matmul_peak_tflops(device, dtype, n: int = 8192, iters: int = 20) -> float:
    """Dense fp16/bf16 matmul TFLOP/s on this GPU, measured in the same run (the FLOP limit)."""
    import torch

    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    sec = timeit(lambda: a @ b, iters, torch.cuda.synchronize)
    return 2 * n**3 / sec / 1e12


def timeit(fn, iters: int, sync) -> float:
    for _ in range(2):  # autotuning, compiles, CUDA-graph capture
        fn()
    sync()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    sync()
    return (time.perf_counter() - t0) / iters


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--arch", choices=("sd15", "sd21", "tiny"), default="sd15")
    ap.add_argument("--model", default=None)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batches", default="2,16,64")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument(
        "--modes",
        default="torch_eager,torch_cuda_graph,torch_compile,torch_compile_cuda_graph,"
        "onnx_plain,onnx_optimized,onnx_cuda_graph",
    )
    ap.add_argument("--onnx-dir", type=Path, default=None, help="reuse an export")
    ap.add_argument(
        "--auto",
        action="store_true",
        help="also record --backend auto's pick at each batch (needs --model: it loads the "
        "model and times its backends as a run would, without the cached choice)",
    )
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()

    import torch

    from genie_plugin.bench.env import environment

    cuda = torch.device(a.device).type == "cuda"
    dtype = torch.float16 if cuda else torch.float32
    unet, tokens = build_unet(a.arch, a.model, a.device, dtype)
    c = unet.config
    gflop = round(gflop_per_row(unet, tokens, a.device, dtype), 3)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    modes = [m for m in a.modes.split(",") if cuda or "cuda" not in m]
    onnx_dir = a.onnx_dir
    report = {}
    if any(m.startswith("onnx") for m in modes) and onnx_dir is None:
        from genie_plugin.diffusion.model import DiffusionGenerator
        from genie_plugin.diffusion.onnx_backend import export_unet

        onnx_dir = Path(tempfile.mkdtemp(prefix="unet-onnx-"))
        stub = DiffusionGenerator(
            name=a.model or a.arch,
            fingerprint="perf",
            tokenizer=None,
            text_encoder=None,
            vae=None,
            unet=unet,
            scheduler_config=None,
            device=torch.device(a.device),
            dtype=dtype,
        )
        t0 = time.time()
        report = export_unet(
            stub, onnx_dir, fp16=cuda, optimize="onnx_optimized" in modes, device=a.device
        )
        report["wall_s"] = round(time.time() - t0, 1)
    peak = round(matmul_peak_tflops(a.device, dtype), 1) if cuda else None
    results: dict = {}
    compiled: dict = {}  # one torch.compile per mode, shared by every batch size (dynamic batch)
    for b in [int(x) for x in a.batches.split(",")]:
        g = torch.Generator().manual_seed(b)
        s = int(c.sample_size)
        x = torch.randn(b, c.in_channels, s, s, generator=g).to(a.device, dtype)
        t = torch.full((b,), 500.0).to(a.device)
        ehs = torch.randn(b, tokens, c.cross_attention_dim, generator=g).to(a.device, dtype)
        row = {}
        for mode in modes:
            try:
                fn = make_runner(mode, unet, onnx_dir, x, t, ehs, a.device, compiled)
                sec = timeit(fn, a.iters, sync)
                row[mode] = {
                    "ms_per_step": round(1e3 * sec, 2),
                    "image_steps_per_s": round(b / sec, 1),
                }
            except Exception as exc:  # noqa: BLE001 - a failed mode is a result
                row[mode] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            print(b, mode, row[mode], flush=True)
        if a.auto:
            from genie_plugin.diffusion import load_generator
            from genie_plugin.diffusion.auto import choose_backend

            gen = compiled.setdefault("_gen", None) or load_generator(a.model, device=a.device)
            compiled["_gen"] = gen
            pick = choose_backend(gen, batch=b, iters=a.iters, use_cache=False)
            row["auto_pick"] = {"backend": pick.backend, "ms_per_call": pick.ms_per_call}
            print(b, "auto", row["auto_pick"], flush=True)
        base = row.get("torch_eager", {}).get("ms_per_step")
        for r in row.values():
            if base and "ms_per_step" in r:
                r["speedup_vs_torch_eager"] = round(base / r["ms_per_step"], 3)
                r["tflops"] = round(r["image_steps_per_s"] * gflop / 1e3, 3)
                if cuda:
                    r["fraction_of_matmul_peak"] = round(r["tflops"] / peak, 3)
        results[str(b)] = row
    out = {
        "benchmark": "unet_throughput",
        "arch": a.model or a.arch,
        "device": a.device,
        "gpu": torch.cuda.get_device_name() if cuda else None,
        "dtype": str(dtype).replace("torch.", ""),
        "gflop_per_image_step": gflop,
        "prompt_tokens": tokens,
        "threads": torch.get_num_threads(),
        "matmul_peak_tflops": peak,
        "results": results,
        "onnx_export": {k: v for k, v in report.items() if k != "files"},
        "environment": environment(),
    }
    text = json.dumps(out, indent=2, sort_keys=True) + "\n"
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text)
    print(text if not a.out else f"wrote {a.out}")


def make_runner(mode, unet, onnx_dir, x, t, ehs, device, compiled):
    from genie_plugin.diffusion.conditioning import Conditioning

    cond = Conditioning(text=ehs)  # what the sampler's backends take

    if mode == "torch_eager":
        return lambda: unet(x, t, encoder_hidden_states=ehs, return_dict=False)
    if mode == "torch_cuda_graph":
        # the backend generation uses (``--backend cuda-graphs``): static buffers + replay
        from genie_plugin.diffusion.cuda_graphs import PaddedDenoiser

        den = PaddedDenoiser(unet, max_rows=len(x))
        return lambda: den(x, t, cond)
    if mode in (
        "torch_compile",
        "torch_compile_cuda_graph",
    ):  # ``--backend torch-compile[-cuda-graphs]``
        from genie_plugin.diffusion.compiled import compiled_denoiser

        if mode not in compiled:
            compiled[mode] = compiled_denoiser(unet, cuda_graphs=mode.endswith("graph"))
        den = compiled[mode]
        return lambda: den(x, t, cond)
    from genie_plugin.diffusion.onnx_backend import OnnxDenoiser

    if mode in ("onnx_plain", "onnx_optimized"):
        name = "model.onnx" if mode == "onnx_plain" else "model_optimized.onnx"
        den = OnnxDenoiser(onnx_dir / "unet" / name, device)
        return lambda: den(x, t, ehs)
    if mode == "onnx_cuda_graph":  # ``--backend onnx-cuda-graphs``
        f = onnx_dir / "unet" / "model_optimized.onnx"
        f = f if f.exists() else onnx_dir / "unet" / "model.onnx"
        den = OnnxDenoiser(f, device, cuda_graphs=True)
        return lambda: den(x, t, ehs)
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
