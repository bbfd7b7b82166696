"""Per-episode fits (learned tokens, adapters), content-addressed beside the image cache.

A fit's key is the digest of everything that determines it: the strategy and its fit
settings, the support images' content digests, the base model's fingerprint and the seed. A
rerun, another --jobs worker or another node of the same shared cache finds it and refits
nothing. Each entry is ``fits/<key[:2]>/<key>.safetensors`` (the tensors, with the record in
its metadata), written atomically; an unreadable entry is refitted and replaced.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

FIT_VERSION = 1


def fit_key(**parts) -> str:
    """The digest of a fit's inputs (JSON-ready values), 32 hex digits."""
    payload = json.dumps({"fit_version": FIT_VERSION, **parts}, sort_keys=True,
                         separators=(",", ":"), default=str)  # fmt: skip
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


class FitStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        if len(key) != 32 or any(c not in "0123456789abcdef" for c in key):
            raise ValueError(f"not a fit key (32 hex digits): {key!r}")
        return self.root / key[:2] / f"{key}.safetensors"

    def get(self, key: str):
        """(tensors, record) of a stored fit, or None (absent or unreadable)."""
        from safetensors import SafetensorError
        from safetensors.torch import load

        p = self.path(key)
        try:
            data = p.read_bytes()
            tensors = load(data)
            meta = _metadata(data)
            record = json.loads(meta["record"])
        except (OSError, SafetensorError, ValueError, KeyError, TypeError):
            return None
        return tensors, record

    def put(self, key: str, tensors: dict, record: dict) -> Path:
        from safetensors.torch import save

        from genie_plugin.io import atomic_write_bytes

        data = save({k: v.contiguous() for k, v in tensors.items()},
                    metadata={"record": json.dumps(record, sort_keys=True)})  # fmt: skip
        return atomic_write_bytes(self.path(key), data)


def _metadata(data: bytes) -> dict:
    n = int.from_bytes(data[:8], "little")
    if n <= 0 or n > len(data) - 8:
        raise ValueError("not a safetensors file")
    return json.loads(data[8 : 8 + n]).get("__metadata__") or {}
