"""Content-addressed augmentation cache.

Every sampler item's output is stored under the digest of its generation key
(:mod:`genie_plugin.diffusion.key`): everything that changes its pixels. A killed run resumes
without regenerating what exists. Files are written atomically (temp + rename) and the JSONL
manifest, which records each file's sha256, is appended under an exclusive cross-platform lock
(``filelock``), so concurrent writers of the same cache do not corrupt it. Reads verify the
entry (:meth:`AugmentationCache.check`); :func:`verify_cache` checks and mends a whole cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from pathlib import Path

from filelock import FileLock
from PIL import Image

from genie_plugin.io import atomic_write_bytes, png_bytes


class AugmentationCache:
    """PNG files named by their generation key, and a JSONL manifest with each one's sha256.

    Every read verifies the entry: a missing, truncated or mismatching file (or one the
    manifest lists only on a torn line) is a miss, counted in ``repaired`` when a file or a
    record was there, so the caller regenerates it and the run never fails for it.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.manifest = self.root / "manifest.jsonl"
        self.repaired = 0
        # key -> every sha256 its records give: writers racing on one key each append one
        self._hashes: dict[str, set[str]] = {}
        self._read_upto = 0  # bytes of the manifest already indexed

    def key(self, model, item) -> tuple[str, dict]:
        """(file key, manifest record) of ``item`` rendered by ``model``: the digest of its
        :class:`~genie_plugin.diffusion.key.GenerationKey`, which lists every input that
        changes the pixels."""
        from genie_plugin.diffusion.key import generation_key

        k = generation_key(model, item)
        return k.digest(), k.to_dict()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.png"

    def _index(self) -> dict[str, set[str]]:
        """key -> sha256 of the manifest's complete lines, read on from where it stopped (other
        processes append); a torn or unparsable line is skipped."""
        if not self.manifest.exists():
            return self._hashes
        with open(self.manifest, "rb") as fh:
            fh.seek(self._read_upto)
            data = fh.read()
        end = data.rfind(b"\n") + 1  # a line still being written is read next time
        for line in data[:end].splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and isinstance(rec.get("sha256"), str) and "key" in rec:
                self._hashes.setdefault(str(rec["key"]), set()).add(rec["sha256"])
        self._read_upto += end
        return self._hashes

    def check(self, key: str) -> tuple[Image.Image | None, str]:
        """(image, status): status 'ok', 'missing' (no file), 'unlisted' (a file without a
        manifest record: a legacy entry, or its record was torn) or a reason it is bad."""
        p = self.path(key)
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            return None, "missing"
        except OSError as exc:
            return None, f"unreadable ({exc.strerror or exc})"
        want = self._hashes.get(key) or self._index().get(key)
        if want is not None and hashlib.sha256(data).hexdigest() not in want:
            return None, "content does not match its manifest hash"
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                image = im.convert("RGB")
        except Exception as exc:  # noqa: BLE001 - any decode failure is a corrupt entry
            return None, f"not a readable PNG ({type(exc).__name__})"
        return image, "ok" if want is not None else "unlisted"

    def get(self, key: str) -> Image.Image | None:
        """The cached image, or None: never cached, or a bad entry (counted in ``repaired``)."""
        image, status = self.check(key)
        if image is None and status != "missing":
            self.repaired += 1
            with contextlib.suppress(OSError):
                self.path(key).unlink()
        return image

    def put(self, key: str, image: Image.Image, meta: dict) -> None:
        data = png_bytes(image)
        # no fsync per image (0.4 ms each, 5 s of a cold main job): an entry a power cut
        # damages fails its hash check on the next read and is regenerated
        atomic_write_bytes(self.path(key), data, durable=False)
        digest = hashlib.sha256(data).hexdigest()
        line = json.dumps({"key": key, "sha256": digest, **meta}, sort_keys=True) + "\n"
        with FileLock(f"{self.manifest}.lock"):
            fd = os.open(self.manifest, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
            try:
                size = os.fstat(fd).st_size
                # a line torn by a crash must not swallow this one
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = "\n" + line
                os.write(fd, line.encode())  # one write call: a kill cannot tear it
            finally:
                os.close(fd)
        self._hashes.setdefault(key, set()).add(digest)


class CachedGenerator:
    """A DiffusionGenerator's ``generate`` through the cache: hits are not regenerated."""

    def __init__(self, model, cache: AugmentationCache, _counts: dict | None = None) -> None:
        self.model = model
        self.cache = cache
        self._counts = (
            _counts
            if _counts is not None
            else {"hits": 0, "generated": 0, "unet_rows": 0, "repaired": 0}
        )

    @property
    def hits(self) -> int:
        return self._counts["hits"]

    @property
    def generated(self) -> int:
        return self._counts["generated"]

    @property
    def repaired(self) -> int:
        """Bad cache entries (truncated, corrupt, mismatching) found and regenerated."""
        return self._counts["repaired"]

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
        before = self.cache.repaired
        out: list[Image.Image | None] = [self.cache.get(k) for k, _ in keys]
        self._counts["repaired"] += self.cache.repaired - before
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


def verify_cache(root: str | os.PathLike, *, repair: bool = False) -> dict:
    """Check every entry of a cache folder: counts of ok / missing / bad / unlisted entries, torn
    manifest lines and the bad keys. ``repair``: delete the bad files and rewrite the manifest
    (atomically) without torn lines and records of files that are gone, so the next run
    regenerates exactly those images."""
    from genie_plugin.errors import GenieError

    root = Path(root)
    if not root.is_dir():
        raise GenieError(f"{root}: no such cache folder")
    cache = AugmentationCache(root)
    records, torn = [], 0
    if cache.manifest.exists():
        for line in cache.manifest.read_bytes().splitlines():
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                records.append(rec if isinstance(rec, dict) and "key" in rec else None)
            except ValueError:
                records.append(None)
            torn += records[-1] is None
    listed = {str(r["key"]) for r in records if r is not None}
    files = {p.stem for p in root.glob("??/*.png")}
    report = {"ok": 0, "missing": 0, "bad": 0, "unlisted": 0, "torn_lines": torn, "bad_keys": []}
    bad: set[str] = set()
    for key in sorted(listed | files):
        image, status = cache.check(key)
        if status == "ok":
            report["ok"] += 1
        elif status in ("missing", "unlisted"):
            report[status] += 1
        else:
            bad.add(key)
            report["bad_keys"].append(f"{key}: {status}")
    report["bad"] = len(bad)
    if repair:
        from genie_plugin.io import write_jsonl

        for key in bad:
            with contextlib.suppress(FileNotFoundError):
                cache.path(key).unlink()
        keep = [r for r in records if r is not None and str(r["key"]) not in bad]
        keep = [r for r in keep if cache.path(str(r["key"])).exists()]
        with FileLock(f"{cache.manifest}.lock"):
            write_jsonl(cache.manifest, keep)
        report["repaired"] = len(bad) + torn + report["missing"]
    return report
