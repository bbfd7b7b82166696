"""The UNet backends of :mod:`genie_plugin.diffusion`, one record each: the sampler loop is
the same, only the denoiser call differs. Everything that lists, checks, describes, times or
lazily loads backends reads this registry (``--backend`` help, ``check_backend``,
``with_backend``, ``auto``'s candidates, the lazy loader), so a new backend is one record here.
Outside the diffusion package so that the CLI builds its help from it without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backend:
    name: str
    description: str
    #: ``"module:function"`` making the denoiser from (generator, options), imported when used
    #: (so this module imports no torch); "" for the torch UNet itself, None for ``auto``
    make: str | None
    needs_cuda: bool = False
    needs_onnxruntime: bool = False
    #: whether its key facts are known without loading the model (:mod:`.diffusion.lazy`)
    lazy: bool = False
    #: whether ``--backend auto`` times it
    auto_candidate: bool = False

    def denoiser(self, gen, options: dict):
        """The denoiser for ``gen`` on this backend (None: the torch UNet)."""
        if not self.make:
            return None
        import importlib

        module, _, func = self.make.partition(":")
        return getattr(importlib.import_module(module), func)(gen, options)


_D = "genie_plugin.diffusion."
_RECORDS = (
    Backend("torch", "PyTorch eager", "", lazy=True, auto_candidate=True),
    Backend(
        "cuda-graphs",
        "PyTorch, replayed from CUDA graphs captured per padded batch size (CUDA only)",
        _D + "cuda_graphs:backend_denoiser",
        needs_cuda=True,
        auto_candidate=True,
    ),
    Backend(
        "torch-compile",
        "PyTorch with the UNet compiled by torch.compile (inductor; dynamic batch)",
        _D + "compiled:backend_denoiser",
    ),
    Backend(
        "torch-compile-cuda-graphs",
        "torch-compile replayed from CUDA graphs per padded batch size",
        _D + "compiled:backend_denoiser_graphs",
        needs_cuda=True,
    ),
    Backend(
        "onnx",
        "optimum ONNX export on onnxruntime (CUDA provider + IO binding, or CPU)",
        _D + "onnx_backend:backend_denoiser",
        needs_onnxruntime=True,
        lazy=True,
        auto_candidate=True,
    ),
    Backend(
        "onnx-cuda-graphs",
        "onnx with onnxruntime's CUDA graphs, one session per padded batch size",
        _D + "onnx_backend:backend_denoiser_graphs",
        needs_cuda=True,
        needs_onnxruntime=True,
        auto_candidate=True,
    ),
    Backend(
        "auto",
        "the fastest of these that runs here, timed once per model, device and libraries",
        None,
    ),
)

REGISTRY: dict[str, Backend] = {b.name: b for b in _RECORDS}


def backend(name: str) -> Backend:
    """The record of ``name``, or one line listing the choices."""
    try:
        return REGISTRY[name]
    except KeyError:
        from genie_plugin.errors import UnknownNameError

        raise UnknownNameError(
            f"unknown backend {name!r}; choose one of: {', '.join(REGISTRY)}"
        ) from None


def help_text() -> str:
    """``--backend``'s help, from the records."""
    return "UNet backend: " + "; ".join(f"{b.name} ({b.description})" for b in _RECORDS) + "."
