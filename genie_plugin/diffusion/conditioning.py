"""What a denoiser reads besides the latents and the timestep: one record of named tensors,
rows first, that the loop concatenates, expands and pads without knowing what they mean.

SD 1.x/2.x need ``text`` (CLIP's last hidden state) only; SDXL adds ``pooled`` and
``time_ids``; LCM's guidance embedding is ``timestep_cond``; SD3 and Flux add ``pooled`` (and
Flux-dev ``guidance``). A family (:mod:`genie_plugin.diffusion.families`) makes the records and
maps them onto its network's keyword arguments; the loop and every backend only move rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping


class Conditioning(Mapping):
    """Named tensors with one row per batch item (``len`` = rows)."""

    __slots__ = ("_t",)

    def __init__(self, tensors: Mapping | None = None, /, **named) -> None:
        t = {**(tensors or {}), **named}
        if not t:
            raise ValueError("a conditioning record needs at least one tensor")
        rows = {len(v) for v in t.values()}
        if len(rows) != 1:
            shapes = {k: tuple(v.shape) for k, v in t.items()}
            raise ValueError(f"conditioning tensors disagree on their rows: {shapes}")
        self._t = dict(sorted(t.items()))

    def __getitem__(self, name: str):
        return self._t[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._t)

    def __len__(self) -> int:  # Mapping's len is the names; rows are what callers count
        return len(self._t)

    @property
    def rows(self) -> int:
        return len(next(iter(self._t.values())))

    def map(self, fn) -> Conditioning:
        return Conditioning({k: fn(v) for k, v in self._t.items()})

    def expand(self, n: int) -> Conditioning:
        """The first row repeated ``n`` times (a view: no copy)."""
        return self.map(lambda v: v[:1].expand(n, *v.shape[1:]))

    def take(self, start: int, stop: int) -> Conditioning:
        return self.map(lambda v: v[start:stop])

    def pad(self, n: int) -> Conditioning:
        """``n`` more rows copying the last one (CUDA-graph buckets)."""
        import torch

        return self.map(lambda v: torch.cat([v, v[-1:].expand(n, *v.shape[1:])]))

    def to(self, *args, **kw) -> Conditioning:
        return self.map(lambda v: v.to(*args, **kw))

    def signature(self) -> tuple:
        """Names, per-row shapes and dtypes: what a captured graph or an export depends on."""
        return tuple((k, tuple(v.shape[1:]), str(v.dtype)) for k, v in self._t.items())

    @staticmethod
    def cat(parts: Iterable[Conditioning]) -> Conditioning:
        import torch

        parts = list(parts)
        names = [tuple(p) for p in parts]
        if len(set(names)) != 1:
            raise ValueError(f"conditioning records with different names: {sorted(set(names))}")
        return Conditioning({k: torch.cat([p[k] for p in parts]) for k in parts[0]})

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={tuple(v.shape)}" for k, v in self._t.items())
        return f"Conditioning({inner})"
