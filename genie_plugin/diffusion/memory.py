"""``--max-batch auto``: measure what one sampler item costs on this GPU and fill the free memory.

Why measured, not tabulated: activation memory depends on the UNet, resolution, dtype, attention
backend and channels-last, so a probe of two batch sizes on the loaded model is the honest
estimate. On a CPU there is nothing to fill; a fixed batch is returned.
"""

from __future__ import annotations

import torch

from genie_plugin.core.batching import auto_max_batch
from genie_plugin.errors import ConfigError

CPU_MAX_BATCH = 16


def parse_max_batch(value: str | int) -> int | str:
    """``--max-batch`` value: a positive integer or ``auto``."""
    if isinstance(value, int) or str(value).strip().isdigit():
        n = int(value)
        if n < 1:
            raise ConfigError(f"--max-batch must be >= 1 or 'auto', got {value!r}")
        return n
    if str(value).strip().lower() == "auto":
        return "auto"
    raise ConfigError(f"--max-batch must be a positive integer or 'auto', got {value!r}")


@torch.no_grad()
def probe_item_bytes(model, probe: tuple[int, int] = (2, 6)) -> float:  # pragma: no cover - CUDA
    """Peak CUDA memory growth per sampler item (two UNet rows with CFG, one without)."""
    dev = torch.device(model.device)
    fam = model.adapter
    rows = 2 if fam.guided_rows(model) else 1
    peaks = []
    for n in probe:
        x, t, ehs = fam.example_inputs(model, n * rows, torch.Generator().manual_seed(0))
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
        fam.forward(model.unet, x, t, ehs)
        torch.cuda.synchronize(dev)
        peaks.append(torch.cuda.max_memory_allocated(dev) - base)
        del x, t, ehs
    per = (peaks[1] - peaks[0]) / (probe[1] - probe[0])
    return max(per, peaks[1] / probe[1] / 4)  # guard against allocator reuse hiding growth


def resolve_max_batch(model, value: str | int, *, cap: int = 256) -> int:
    """An integer batch: ``value`` itself, or on ``auto`` the measured fit (CPU: 16)."""
    v = parse_max_batch(value)
    if v != "auto":
        return v
    dev = torch.device(model.device)
    if dev.type != "cuda":
        return CPU_MAX_BATCH
    per = probe_item_bytes(model)  # pragma: no cover - CUDA only (the device's free memory)
    torch.cuda.empty_cache()  # pragma: no cover
    free, _total = torch.cuda.mem_get_info(dev)  # pragma: no cover
    # the VAE decodes in slices of the same size; its peak at 512 px is below the UNet's
    return auto_max_batch(free, per, cap=cap)  # pragma: no cover
