"""Torch UNet call replayed from captured CUDA graphs (``--backend cuda-graphs``).

Why: at small batches an SD UNet step is bound by kernel-launch overhead (figures: docs/backends.md,
from ``benchmarks/perf/unet_throughput.py``'s JSON). A graph needs fixed shapes and addresses, while the GeNIe-Ada loop's
batch grows as items join, so rows are padded up to a power-of-two bucket
(:func:`genie_plugin.core.batching.graph_buckets`) and one graph per (bucket, input shape) is
captured on first use and replayed after. Padding rows copy the last real row; the UNet treats
rows independently (per-sample group norm and attention), so real rows are unaffected.
"""

from __future__ import annotations

import torch

from genie_plugin.core.batching import bucket_for, graph_buckets
from genie_plugin.errors import ConfigError


class PaddedDenoiser:
    """UNet call on bucket-padded batches; ``capture=True`` records and replays CUDA graphs.

    With ``capture=False`` it runs the padded batch eagerly: the same padding path, testable on a
    CPU and a fallback where graphs are unavailable.
    """

    def __init__(
        self,
        unet,
        max_rows: int = 512,
        *,
        capture: bool = True,
        forward=None,
        backend: str = "cuda-graphs",
        fallback: str = "torch",
        family=None,
    ) -> None:
        from genie_plugin.diffusion.families import family as family_of

        self.unet = unet
        self.family = family or family_of("sd")
        # ``forward(x, t, cond)`` is the call captured (default: the eager network; or compiled)
        self.forward = forward or self._eager
        self.buckets = graph_buckets(max_rows)
        self.capture = capture
        self.graphs: dict[tuple, tuple] = {}
        self.stats = {"captures": 0, "replays": 0, "padded_rows": 0}
        if capture:
            dev = next(unet.parameters()).device
            if dev.type != "cuda" or not torch.cuda.is_available():
                raise ConfigError(
                    f"--backend {backend} needs the model on a CUDA device (got {dev.type}); "
                    f"use --backend {fallback} or pass --device cuda"
                )
            # one memory pool for every bucket's graph: each replay copies its inputs in and
            # its output out before the next, so graphs may reuse each other's intermediates
            # (private pools would hold activations for every bucket at once: at --max-batch
            # auto, sized for one eager batch, that runs out of memory)
            self.pool = torch.cuda.graph_pool_handle()  # pragma: no cover - CUDA only

    def _eager(self, x, t, cond):
        return self.family.forward(self.unet, x, t, cond)

    def _capture(self, x, t, cond):  # pragma: no cover - CUDA only (graph capture)
        static = (x.clone(), t.clone(), cond.map(lambda v: v.clone()))
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up outside the graph (autotuning, compiles)
            for _ in range(2):
                self.forward(*static)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            out = self.forward(*static)
        self.stats["captures"] += 1
        return graph, static, out

    @torch.no_grad()
    def __call__(self, sample: torch.Tensor, t: torch.Tensor, cond) -> torch.Tensor:
        n = len(sample)
        b = bucket_for(n, self.buckets)
        if b > n:
            pad = b - n
            sample = torch.cat([sample, sample[-1:].expand(pad, *sample.shape[1:])])
            t = torch.cat([t, t[-1:].expand(pad)])
            cond = cond.pad(pad)  # every conditioning tensor, row for row
            self.stats["padded_rows"] += pad
        if not self.capture:
            return self.forward(sample, t, cond)[:n]
        return self._replay(sample, t, cond, n)  # pragma: no cover - CUDA only (pytest -m gpu)

    def _replay(self, sample, t, cond, n: int):  # pragma: no cover - CUDA only (pytest -m gpu)
        key = (len(sample), tuple(sample.shape[1:]), cond.signature(), sample.dtype, t.dtype)
        if key not in self.graphs:
            self.graphs[key] = self._capture(sample, t, cond)
        graph, (xs, ts, cs), out = self.graphs[key]
        xs.copy_(sample)
        ts.copy_(t)
        for name in cs:
            cs[name].copy_(cond[name])
        graph.replay()
        self.stats["replays"] += 1
        return out[:n].clone()


def backend_denoiser(gen, options: dict):
    """``--backend cuda-graphs`` (:mod:`genie_plugin.backends`)."""
    return PaddedDenoiser(gen.unet, family=gen.adapter)
