"""Environment record for benchmark JSON files (versions, device, git commit)."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


CPU_KERNEL_PINS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR")


def compute_record(threads: int | None = None) -> dict:
    """What decides the last bits of a run's numbers on this machine: the CPU kernels' instruction
    set and its pins, the thread count, the accelerator, and the BLAS numpy/scipy load."""
    import torch

    rec = {
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_kernel_pins": {v: os.environ[v] for v in CPU_KERNEL_PINS if v in os.environ},
        "threads": torch.get_num_threads() if threads is None else threads,
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
    }
    if torch.cuda.is_available():
        rec["gpu"] = torch.cuda.get_device_name(0)
    return rec


def environment() -> dict:
    import torch

    dev = "cpu"
    if torch.cuda.is_available():
        dev = torch.cuda.get_device_name(0)
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_threads": torch.get_num_threads(),
        # the kernels' instruction set decides the last bits of a CPU run (see check_leaderboard.sh)
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_kernel_pins": {v: os.environ[v] for v in CPU_KERNEL_PINS if v in os.environ},
        "device": dev,
        "git_commit": git_commit(),
        "versions": {
            d: _version(d)
            for d in (
                "genie-fewshot",
                "torch",
                "diffusers",
                "transformers",
                "timm",
                "learn2learn",
                "onnxruntime",
                "onnxruntime-gpu",
                "optimum",
            )
        },
    }
