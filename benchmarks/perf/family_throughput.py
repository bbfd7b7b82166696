"""Hard negatives per second per model family, each at the sampler its family recommends.

For every model given (hub id in the HF cache, folder or file; default: the families' reference
checkpoints that are in the cache), GeNIe outputs/s (r 0.8, one source image per output) and
GeNIe-Ada outputs/s (its five candidates per output, batched), with the network rows per
output the schedule plan counts, all in one process on one device, so the ratios between
families are measured in the same run. Speed does not depend on the prompt or the source, so
a flat source and one prompt suffice. Writes JSON (figures, environment) to ``--out``::

    python benchmarks/perf/family_throughput.py --device cuda --out benchmarks/results/x.json
    python benchmarks/perf/family_throughput.py --model tiny-random --device cpu --outputs 2  # smoke
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

#: the families' reference checkpoints (timed where they are in the HF cache)
REFERENCE = (
    "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "stabilityai/stable-diffusion-xl-base-1.0",
    "stabilityai/sdxl-turbo",
    "SimianLuo/LCM_Dreamshaper_v7",
    "stabilityai/stable-diffusion-3.5-medium",
    "black-forest-labs/FLUX.1-schnell",
)
ADA = (0.5, 0.6, 0.7, 0.8, 0.9)


def _available(name: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    if Path(name).exists() or "/" not in name:
        return True
    return isinstance(try_to_load_from_cache(name, "model_index.json"), str)


def time_model(name: str, device: str, outputs: int, max_batch: int) -> dict:
    import torch
    from PIL import Image

    from genie_plugin.diffusion import SampleItem, load_generator
    from genie_plugin.diffusion.costs import cost_rows

    t0 = time.perf_counter()
    gen = load_generator(name, device=device)
    load_s = time.perf_counter() - t0
    n = gen.resolution
    src = Image.new("RGB", (n, n), (120, 80, 40))
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    genie = [SampleItem("a photo of a cat.", 0.8, i, src) for i in range(outputs)]
    ada = [SampleItem("a photo of a cat.", r, i, src) for i in range(outputs) for r in ADA]
    gen.generate(genie[:1], max_batch=max_batch)  # warm-up (kernels, allocator)
    out = {"model": name, "family": gen.family, "sampler": gen.sampler.to_dict(),
           "resolution": n, "dtype": str(gen.dtype), "load_s": round(load_s, 1),
           "network_rows_per_output": cost_rows(gen)}  # fmt: skip
    for mode, items in (("genie", genie), ("genie_ada_batched", ada)):
        sync()
        t0 = time.perf_counter()
        gen.generate(items, max_batch=max_batch)
        sync()
        s = time.perf_counter() - t0
        out[mode] = {"seconds": round(s, 3), "outputs_per_s": round(outputs / s, 4)}
    del gen
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return out


def main(argv=None) -> int:
    from genie_plugin.bench.env import environment

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", help="model (repeat); default: REFERENCE")
    p.add_argument("--device", default="cuda")
    p.add_argument("--outputs", type=int, default=16)
    p.add_argument("--max-batch", type=int, default=16)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    names = a.model or [m for m in REFERENCE if _available(m)]
    rows, skipped = [], {}
    for name in names:
        try:
            rows.append(time_model(name, a.device, a.outputs, a.max_batch))
            print(json.dumps(rows[-1]), flush=True)
        except Exception as exc:  # noqa: BLE001 - one model that fails does not lose the others
            skipped[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            print(f"{name}: skipped ({skipped[name]})", file=sys.stderr)
    doc = {"benchmark": "family_throughput", "outputs": a.outputs, "max_batch": a.max_batch,
           "models": rows, "skipped": skipped,
           "not_in_cache": [m for m in REFERENCE if not a.model and m not in names],
           "environment": environment()}  # fmt: skip
    from genie_plugin.io import atomic_write_text

    a.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(a.out, json.dumps(doc, indent=1) + "\n")
    print(f"wrote {a.out}")
    return 0 if rows else 1


if __name__ == "__main__":
    raise SystemExit(main())
