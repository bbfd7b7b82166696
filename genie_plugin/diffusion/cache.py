"""Content-addressed augmentation cache.

Every sampler item's output is stored under the digest of its generation key
(:mod:`genie_plugin.diffusion.key`): everything that changes its pixels. A killed run resumes
without regenerating what exists. Files are written atomically (temp + rename) and the JSONL
manifest is appended under an exclusive cross-platform lock (``filelock``), so concurrent
writers of the same cache do not corrupt it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from filelock import FileLock
from PIL import Image

from genie_plugin.io import save_png


class AugmentationCache:
    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.manifest = self.root / "manifest.jsonl"

    def key(self, model, item) -> tuple[str, dict]:
        """(file key, manifest record) of ``item`` rendered by ``model``: the digest of its
        :class:`~genie_plugin.diffusion.key.GenerationKey`, which lists every input that
        changes the pixels."""
        from genie_plugin.diffusion.key import generation_key

        k = generation_key(model, item)
        return k.digest(), k.to_dict()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.png"

    def get(self, key: str) -> Image.Image | None:
        p = self.path(key)
        if not p.exists():
            return None
        with Image.open(p) as im:
            im.load()
            return im.convert("RGB")

    def put(self, key: str, image: Image.Image, meta: dict) -> None:
        save_png(image, self.path(key))
        line = json.dumps({"key": key, **meta}, sort_keys=True) + "\n"
        with FileLock(f"{self.manifest}.lock"), open(self.manifest, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()


class CachedGenerator:
    """A DiffusionGenerator's ``generate`` through the cache: hits are not regenerated."""

    def __init__(self, model, cache: AugmentationCache, _counts: dict | None = None) -> None:
        self.model = model
        self.cache = cache
        self._counts = (
            _counts if _counts is not None else {"hits": 0, "generated": 0, "unet_rows": 0}
        )

    @property
    def hits(self) -> int:
        return self._counts["hits"]

    @property
    def generated(self) -> int:
        return self._counts["generated"]

    @property
    def unet_rows(self) -> int:
        """UNet rows every requested image costs from scratch, cache hits included: a cost
        that does not depend on what an earlier run left in the cache."""
        return self._counts["unet_rows"]

    # What strategies and cost counts read of the model they render with (nothing else is
    # forwarded: a strategy that needs more asks for it here, by name).
    @property
    def sampler(self):
        return self.model.sampler

    @property
    def scheduler_config(self):
        return self.model.scheduler_config

    @property
    def device(self):
        return self.model.device

    @property
    def fingerprint(self) -> str:
        return self.model.fingerprint

    def describe(self) -> dict:
        return self.model.describe()

    def with_sampler(self, **changes):
        """Other sampler settings, same cache and counters (GeNIe-Ada's probe pass)."""
        return CachedGenerator(self.model.with_sampler(**changes), self.cache, self._counts)

    def generate(self, items, *, max_batch: int = 16, progress=None, denoiser=None):
        from genie_plugin.diffusion.sampler import unet_rows

        keys = [self.cache.key(self.model, it) for it in items]
        out: list[Image.Image | None] = [self.cache.get(k) for k, _ in keys]
        missing = [i for i, im in enumerate(out) if im is None]
        self._counts["hits"] += len(items) - len(missing)
        self._counts["unet_rows"] += unet_rows(self.model, items)
        # generate in chunks and store each chunk at once: a kill loses at most one chunk
        for c in range(0, len(missing), max_batch):
            idx = missing[c : c + max_batch]
            ims = self.model.generate(
                [items[i] for i in idx], max_batch=max_batch, progress=progress, denoiser=denoiser
            )
            for i, im in zip(idx, ims, strict=True):
                key, meta = keys[i]
                self.cache.put(key, im, meta)
                out[i] = im
            self._counts["generated"] += len(idx)
        return out
