"""A model folder as cache keys, rows and cost counts read it, with the weights loaded only when
an image has to be generated.

A warm run finds every image in the augmentation cache; what it needs of the model is what the
generation key, the row's ``model`` field and the UNet-row count read: the fingerprint, sampler
settings, scheduler config, native resolution, backend and its graph, dtype and device. Loading
the weights for that (diffusers' and transformers' model code, the UNet, an onnxruntime session)
cost ~2.2 s per ``--jobs`` worker. Those facts are recorded when the model is first loaded,
under a name that hashes everything they are a function of — the weights' content fingerprint,
the requested settings, the backend's graph content, the device, the library versions and the
code of this package — so a record is never read for another model, setting or code. A
:class:`LazyGenerator` serves them and loads the model on the first ``generate``, then checks
the loaded model's facts against the record (a mismatch is a bug: it raises rather than store
images under wrong keys).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from genie_plugin.backends import REGISTRY as BACKEND_REGISTRY

#: Backends whose facts can be known without loading (compiled and CUDA-graph backends load).
LAZY_BACKENDS = tuple(name for name, b in BACKEND_REGISTRY.items() if b.lazy)


def model_facts(gen) -> dict:
    """What keys, rows and counts read of a loaded model (its sampler aside), JSON-ready."""
    from genie_plugin.diffusion.key import generation_key_facts

    return {
        "name": gen.name,
        "fingerprint": gen.fingerprint,
        "family": gen.family,
        "guidance_embedded": gen.adapter.embeds_guidance(gen),
        "scheduler_config": dict(gen.scheduler_config),
        "native_resolution": int(gen.native_resolution),
        **generation_key_facts(gen),
    }


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    from genie_plugin.diffusion.key import GENERATION_VERSION

    # the code that derives the facts (sampler defaults, resolution...), edited in a checkout
    # without a version bump, is part of the record's name too
    code = hashlib.sha256()
    for f in sorted(Path(__file__).parent.glob("*.py")):
        code.update(f.read_bytes())
    out: dict = {"generation": GENERATION_VERSION, "code": code.hexdigest()[:16]}
    for dist in ("genie-fewshot", "diffusers", "transformers", "torch", "onnxruntime"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def facts_path(request: dict) -> Path:
    """The record of one load request (model content, settings, backend graph, device, versions)."""
    from genie_plugin.paths import cache_root

    blob = json.dumps({**request, "versions": _versions()}, sort_keys=True, default=str)
    return cache_root() / "model_facts" / f"{hashlib.sha256(blob.encode()).hexdigest()[:24]}.json"


def read_facts(request: dict) -> dict | None:
    try:
        facts = json.loads(facts_path(request).read_text())
    except (OSError, ValueError):
        return None
    return facts if isinstance(facts, dict) and "sampler" in facts else None


def write_facts(request: dict, gen) -> None:
    from genie_plugin.io import atomic_write_text

    facts = {**model_facts(gen), "sampler": gen.sampler.to_dict()}
    atomic_write_text(facts_path(request), json.dumps(facts, indent=1, sort_keys=True) + "\n")


class _Variant:
    """Stands for the loaded model's denoiser where keys read its graph variant."""

    def __init__(self, variant: str) -> None:
        self.variant = variant


class LazyGenerator:
    """A :class:`~genie_plugin.diffusion.model.DiffusionGenerator` from its recorded facts
    (the :class:`~genie_plugin.diffusion.protocol.ModelView` protocol, no more), loaded by
    ``load()`` on the first ``generate`` or ``model()``. ``with_sampler`` views share the one
    load."""

    def __init__(self, facts: dict, load, *, sampler=None, _shared: dict | None = None) -> None:
        import torch

        from genie_plugin.diffusion.settings import SamplerConfig

        self._facts = facts
        self._shared = _shared if _shared is not None else {"load": load, "model": None}
        self.sampler = sampler or SamplerConfig.from_dict(facts["sampler"])
        self.name = facts["name"]
        self.fingerprint = facts["fingerprint"]
        self.family = facts["family"]
        self.guidance_embedded = facts["guidance_embedded"]
        self.scheduler_config = facts["scheduler_config"]
        self.backend = facts["backend"]
        self.denoiser = _Variant(facts["backend_variant"])
        self.dtype = getattr(torch, facts["dtype"])
        self.device = torch.device(facts["device"])
        self._stats = {"channels_last": True} if facts["memory_format"] == "channels_last" else {}

    @property
    def adapter(self):
        from genie_plugin.diffusion.families import family

        return family(self.family)

    @property
    def loaded(self) -> bool:
        return self._shared["model"] is not None

    @property
    def stats(self) -> dict:
        m = self._shared["model"]
        return m.stats if m is not None else self._stats

    @property
    def native_resolution(self) -> int:
        return int(self._facts["native_resolution"])

    @property
    def resolution(self) -> int:
        return int(self.sampler.resolution or self.native_resolution)

    def describe(self) -> dict:
        from genie_plugin.diffusion.model import describe_model

        return describe_model(self.name, self.fingerprint, self.sampler, self.backend)

    def with_sampler(self, **changes: Any) -> LazyGenerator:
        return LazyGenerator(
            self._facts, None, sampler=replace(self.sampler, **changes), _shared=self._shared
        )

    def model(self):
        """The loaded model with this view's sampler (loads it on the first call and checks
        it against the recorded facts)."""
        if self._shared["model"] is None:
            gen = self._shared["load"]()
            got = json.loads(json.dumps(model_facts(gen), default=str))  # as recorded
            diff = sorted(k for k in got if got[k] != self._facts.get(k))
            if diff:
                from genie_plugin.errors import GenieError

                raise GenieError(
                    f"the recorded facts of model {self.name!r} differ from the loaded model in "
                    f"{', '.join(diff)}; delete the folder model_facts under the cache root "
                    "and run again"
                )
            self._shared["model"] = gen
        return replace(self._shared["model"], sampler=self.sampler)

    def generate(self, items, *, max_batch: int = 16, progress=None, denoiser=None):
        return self.model().generate(
            items, max_batch=max_batch, progress=progress, denoiser=denoiser
        )

    # Anything else (the modules themselves) is asked of ``model()``, which loads: explicitly.


def loaded_model(view):
    """The loaded :class:`~.model.DiffusionGenerator` behind a view (the cache in front of it,
    a lazily served model): for work that needs the modules themselves, such as a fit."""
    if isinstance(view, LazyGenerator):
        return view.model()
    inner = getattr(view, "model", view)  # CachedGenerator.model
    if isinstance(inner, LazyGenerator):
        return inner.model()
    if callable(inner) and not hasattr(inner, "unet"):
        raise TypeError(f"not a model view: {type(view).__name__}")
    return inner
