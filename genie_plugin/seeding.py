"""Stable per-item seeds.

Every generated image's seed is a hash of (run seed, dataset, episode, class, source, ...), so
an image does not depend on batch composition, process count or iteration order, and a cache
hit is the same image a fresh run would make. Python's ``hash`` is salted per process, so we
use BLAKE2b over a canonical JSON encoding.
"""

from __future__ import annotations

import hashlib
import json

import torch


def stable_seed(*parts: object) -> int:
    """A 63-bit seed from JSON-serialisable parts; identical across processes and machines."""
    payload = json.dumps(list(parts), sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.blake2b(payload.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & ((1 << 63) - 1)


def cpu_generator(seed: int) -> torch.Generator:
    """A fresh CPU generator: noise is drawn on the CPU so results match across devices."""
    return torch.Generator("cpu").manual_seed(int(seed))
