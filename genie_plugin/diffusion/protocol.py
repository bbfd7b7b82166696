"""The model as strategies, cache keys and cost counts read it: one stated protocol that the
loaded model (:class:`~.model.DiffusionGenerator`), the lazily served one
(:class:`~.lazy.LazyGenerator`) and the cache in front of either
(:class:`~.cache.CachedGenerator`) each implement in full — nothing is forwarded by
``__getattr__``, so reading a fact never loads gigabytes by accident."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class ModelView(Protocol):
    name: str
    fingerprint: str  # content hash of the weights: every cache key starts here
    family: str  # genie_plugin.diffusion.families name
    guidance_embedded: bool  # guidance is a network input (LCM): no unconditional rows
    sampler: Any  # SamplerConfig
    scheduler_config: Any
    device: Any
    resolution: int

    def describe(self) -> dict: ...

    def with_sampler(self, **changes: Any) -> ModelView: ...

    def generate(
        self,
        items: Sequence,
        *,
        max_batch: int = 16,
        progress: Callable[[int], None] | None = None,
        denoiser=None,
    ) -> list: ...


#: What keys read besides the view (the backend facts: generation_key_facts).
KEY_FACTS = ("backend", "denoiser", "dtype", "stats")
