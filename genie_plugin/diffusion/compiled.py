"""Torch UNet call through ``torch.compile`` (``--backend torch-compile[-cuda-graphs]``).

Why: at the batches that fill a GPU an SD UNet step is compute-bound, and eager PyTorch leaves
throughput in unfused normalisation/activation kernels (figures: docs/backends.md, from
``benchmarks/perf/unet_throughput.py``'s JSON); inductor fuses them. The GeNIe-Ada loop's batch grows as items join,
so only the batch dimension is compiled dynamic: a few compiles (diffusers branches on batch
size at 16 and 64 rows) serve every batch instead of one per size. ``torch-compile-cuda-graphs``
replays the compiled call from CUDA graphs captured per padded batch bucket, exactly as
``cuda-graphs`` does for the eager call (the latency fix for small batches).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch._dynamo.exc
import torch._inductor.exc

from genie_plugin.errors import ConfigError

# compile failures (a missing compiler or triton), as opposed to errors the UNet itself raises
_COMPILE_ERRORS: tuple[type[BaseException], ...] = (
    torch._dynamo.exc.BackendCompilerFailed,
    torch._inductor.exc.InductorError,
)


class CompiledUNet:
    """``torch.compile``-d UNet with the sampler's denoiser signature ``(x, t, ehs) -> eps``.

    Compiles lazily on the first call of each batch range (tens of seconds for SD 1.5;
    benchmarks warm up first). Outputs agree with eager to rounding (fused kernels reorder
    float operations).
    """

    def __init__(self, unet, *, compiler: str | Callable = "inductor", family=None) -> None:
        from genie_plugin.diffusion.families import family as family_of

        self.unet = unet
        self.family = family or family_of("sd")
        self.fn = torch.compile(unet, backend=compiler)
        self.stats = {"calls": 0}

    @torch.no_grad()
    def __call__(self, sample: torch.Tensor, t: torch.Tensor, cond) -> torch.Tensor:
        self.stats["calls"] += 1
        # only the batch is dynamic: ``dynamic=True`` would also make the latent size symbolic
        # and "duck size" it to the batch when the two happen to be equal (a recompile later)
        for x in (sample, t, *cond.values()):
            torch._dynamo.maybe_mark_dynamic(x, 0)
        try:
            return self.family.forward(self.fn, sample, t, cond)
        except _COMPILE_ERRORS as exc:
            cause = getattr(exc, "inner_exception", None) or exc
            first = (str(cause).strip().splitlines() or [""])[0][:300]
            raise ConfigError(
                f"--backend torch-compile: torch.compile could not compile the UNet "
                f"({type(cause).__name__}: {first}); inductor needs triton on a GPU and a C++ "
                "compiler on a CPU: install them or use --backend torch"
            ) from exc


def compiled_denoiser(unet, *, cuda_graphs: bool = False, family=None):
    """The compiled network call, optionally replayed from CUDA graphs (one per padded bucket)."""
    if not cuda_graphs:
        return CompiledUNet(unet, family=family)
    from genie_plugin.diffusion.cuda_graphs import PaddedDenoiser

    return PaddedDenoiser(
        unet,
        forward=CompiledUNet(unet, family=family),
        backend="torch-compile-cuda-graphs",
        fallback="torch-compile",
        family=family,
    )


def backend_denoiser(gen, options: dict):
    """``--backend torch-compile`` (:mod:`genie_plugin.backends`)."""
    return compiled_denoiser(gen.unet, cuda_graphs=False, family=gen.adapter)


def backend_denoiser_graphs(gen, options: dict):
    """``--backend torch-compile-cuda-graphs``."""
    return compiled_denoiser(gen.unet, cuda_graphs=True, family=gen.adapter)
