"""``--backend auto``: the fastest UNet backend for this model on this device, measured.

Which backend wins depends on the machine, the model and the batch (on a 2-core CPU the ONNX
graph is 2.5× faster than eager PyTorch at batch 2 and 1.1× at batch 64; GPUs differ again), so
``auto`` does not guess from a table: it times each backend that can run here — what is
installed, CUDA or not, graph capture possible — on the same seeded UNet batch, in one process,
and takes the fastest. The choice and its timings are cached per (model fingerprint, device,
library versions, batch), so the calibration (and an ONNX export, itself cached by model
content) is paid once. The chosen backend, never "auto", is what manifests and cache keys
record.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

import torch

AUTO = "auto"
#: the batch the calibration times: the size a run's UNet calls mostly have (max_batch 16..64
#: splits into groups of about this size once GeNIe's timestep groups are formed)
CALIBRATION_BATCH = 16


@dataclass(frozen=True)
class BackendChoice:
    backend: str
    ms_per_call: dict[str, float]  # candidate -> median ms per UNet call at ``batch``
    batch: int
    skipped: dict[str, str]  # candidate -> why it could not run here
    cached: bool = False

    def summary(self) -> str:
        times = ", ".join(f"{k} {v:.1f} ms" for k, v in sorted(self.ms_per_call.items()))
        src = "cached choice" if self.cached else "measured now"
        return f"auto → {self.backend} ({times} per UNet call at batch {self.batch}; {src})"


def candidates(device) -> tuple[list[str], dict[str, str]]:
    """Backends that can run on ``device`` with what is installed, and why the others cannot
    (the registry's ``auto`` candidates, in its order)."""
    from genie_plugin.backends import REGISTRY

    skipped: dict[str, str] = {}
    on_cuda = torch.device(device).type == "cuda"
    try:
        import onnxruntime as ort

        providers = ort.get_available_providers()
    except ImportError:
        ort = providers = None
    names = []
    for name, b in REGISTRY.items():
        if not b.auto_candidate:
            continue
        if b.needs_onnxruntime and ort is None:
            skipped.setdefault("onnx", "onnxruntime is not installed")
        elif b.needs_onnxruntime and on_cuda and "CUDAExecutionProvider" not in providers:
            skipped.setdefault("onnx", "onnxruntime has no CUDA provider (install onnxruntime-gpu)")
        elif b.needs_cuda and not on_cuda:
            if not b.needs_onnxruntime:  # onnx-cuda-graphs is onnx's variant, not listed apart
                skipped[name] = "CUDA graphs need a CUDA device"
        else:
            names.append(name)
    return names, skipped


def _versions() -> str:
    parts = [f"torch {torch.__version__}"]
    try:
        import onnxruntime as ort

        parts.append(f"onnxruntime {ort.__version__}")
    except ImportError:
        pass
    return ", ".join(parts)


def _device_name(device) -> str:
    import platform

    if torch.device(device).type == "cuda":  # pragma: no cover - GPU only
        return torch.cuda.get_device_name(torch.device(device))
    return f"{platform.machine()} {platform.processor() or ''} x{torch.get_num_threads()}".strip()


def _choice_key(fingerprint: str, dtype, device, names: list[str], batch: int) -> str:
    """What a cached choice is valid for: the model, the device, the libraries, the batch."""
    import hashlib

    raw = json.dumps([fingerprint, str(dtype), _device_name(device), _versions(), names, batch])
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def choice_path(fingerprint: str, dtype, device, names: list[str], batch: int):
    """Where the choice for this model, device, libraries and batch is cached."""
    from genie_plugin.paths import cache_root

    key = _choice_key(fingerprint, dtype, device, names, batch)
    return cache_root() / "backends" / f"{key}.json"


def read_choice(path) -> BackendChoice | None:
    """The cached choice at ``path``; None when there is none or it is damaged (measure again)."""
    try:
        return BackendChoice(**{**json.loads(path.read_text()), "cached": True})
    except (OSError, ValueError, TypeError):
        return None


def time_backend(gen, backend: str, *, batch: int, iters: int, seed: int = 0) -> float:
    """Median milliseconds per UNet call of ``gen`` on ``backend`` (a seeded batch, warmed up)."""
    from genie_plugin.diffusion.loop import torch_denoiser

    g = gen.with_backend(backend)
    call = g.denoiser or torch_denoiser(g)
    x, t, ehs = gen.adapter.example_inputs(gen, batch, torch.Generator().manual_seed(seed))
    sync = torch.cuda.synchronize if torch.device(gen.device).type == "cuda" else (lambda: None)
    out = []
    with torch.no_grad():
        for k in range(iters + 2):  # two warm-up calls (graph capture, session start)
            sync()
            t0 = time.perf_counter()
            call(x, t, ehs)
            sync()
            if k >= 2:
                out.append(1000 * (time.perf_counter() - t0))
    out.sort()
    return out[len(out) // 2]


def choose_backend(
    gen, *, batch: int = CALIBRATION_BATCH, iters: int = 5, use_cache: bool = True
) -> BackendChoice:
    """Time every backend that can run ``gen`` here and return the fastest (cached)."""
    from genie_plugin.io import atomic_write_text

    names, skipped = candidates(gen.device)
    path = choice_path(gen.fingerprint, gen.dtype, gen.device, names, batch)
    if use_cache and (cached := read_choice(path)) is not None:
        return cached
    times: dict[str, float] = {}
    for name in names:
        try:
            times[name] = round(time_backend(gen, name, batch=batch, iters=iters), 2)
        except Exception as exc:  # noqa: BLE001 - a backend that fails here is not a candidate
            skipped[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    best = min(times, key=times.get)  # torch always runs
    choice = BackendChoice(best, times, batch, skipped)
    d = asdict(choice)
    d.pop("cached")
    atomic_write_text(path, json.dumps(d, indent=1, sort_keys=True) + "\n")
    return choice
