"""Content-addressed augmentation cache.

Every sampler item's output is stored under the digest of its generation key
(:mod:`genie_plugin.diffusion.key`): everything that changes its pixels. A killed run resumes
without regenerating what exists. What the cache trusts, and why it is safe on a cluster
filesystem shared by many writers:

- **Keys are checked before they become paths**: 32 lowercase hex digits, nothing else (a
  manifest line saying ``../../x`` or ``/abs/x`` is ignored), and files are opened and removed
  relative to their two-letter shard folder opened without following links: a symlinked shard
  or file is never read through nor deleted.
- **First writer wins**: an image is written to a temp file and hard-linked to its name, which
  fails if the name exists; a file never changes once it is there, so a reader's hash check
  cannot catch a file mid-replace, and two writers of one key (different batches round the
  last bit differently) never replace each other's image.
- **One manifest file per writer** (``manifests/<host>-<pid>-<random>.jsonl``), appended by
  that process alone: no lock, so no reliance on ``flock``/``O_APPEND`` across NFS clients
  (node-local on NFSv3 ``nolock`` or Lustre ``localflock``). Readers index every writer's
  file (and a legacy ``manifest.jsonl``); a torn line is skipped.
- **A mismatch re-reads the index** before the file is called bad, and a bad file is removed
  only if it is still the very file that was read (same inode): a record another writer
  appended meanwhile is seen, and nobody's good image is deleted.
- Nothing ever rewrites a manifest (``--repair`` only removes bad files), so no record can be
  lost beside live writers; a record of a file that is gone is a plain miss.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import re
import secrets
import socket
import stat
from pathlib import Path

from PIL import Image

from genie_plugin.io import link_new_bytes, png_bytes

#: A cache key: the first 32 hex digits of a generation key's sha256 (``GenerationKey.digest``).
KEY_RE = re.compile(r"[0-9a-f]{32}")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


def valid_key(key: object) -> bool:
    """Whether ``key`` is a cache key (and so safe to turn into a path under the cache)."""
    return isinstance(key, str) and KEY_RE.fullmatch(key) is not None


def writer_name() -> str:
    """This process's manifest file name: host, pid and a random part (pids repeat across
    nodes and restarts), in characters that are safe in a file name."""
    host = re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname())[:64] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(4)}.jsonl"


def _regular_files(folder: Path, pattern: re.Pattern) -> list[Path]:
    """Regular files (not links) in ``folder`` whose names match, sorted; none if ``folder`` is
    missing, a link or not a folder."""
    try:
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            return []
        with os.scandir(folder) as it:
            names = [e.name for e in it if e.is_file(follow_symlinks=False)]
    except OSError:
        return []
    return [folder / n for n in sorted(names) if pattern.fullmatch(n)]


class AugmentationCache:
    """PNG files named by their generation key, and per-writer JSONL manifests with each one's
    sha256.

    Every read verifies the entry: a missing, truncated or mismatching file (or one the
    manifests list only on a torn line) is a miss, counted in ``repaired`` when a file or a
    record was there, so the caller regenerates it and the run never fails for it.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.manifests = self.root / "manifests"
        #: the single manifest of caches written before per-writer manifests (read, never
        #: written)
        self.legacy_manifest = self.root / "manifest.jsonl"
        self._own: Path | None = None  # this writer's manifest, made at its first image
        self.repaired = 0
        # key -> every sha256 its records give: writers racing on one key may each append one
        self._hashes: dict[str, set[str]] = {}
        self._read_upto: dict[Path, int] = {}  # bytes of each manifest already indexed

    def key(self, model, item) -> tuple[str, dict]:
        """(file key, manifest record) of ``item`` rendered by ``model``: the digest of its
        :class:`~genie_plugin.diffusion.key.GenerationKey`, which lists every input that
        changes the pixels."""
        from genie_plugin.diffusion.key import generation_key

        k = generation_key(model, item)
        return k.digest(), k.to_dict()

    def path(self, key: str) -> Path:
        if not valid_key(key):
            raise ValueError(f"not a cache key (32 hex digits): {key!r}")
        return self.root / key[:2] / f"{key}.png"

    def manifest_files(self) -> list[Path]:
        """Every manifest: the legacy single file (if a regular file) and each writer's."""
        legacy = _regular_files(self.root, re.compile(re.escape(self.legacy_manifest.name)))
        return legacy + _regular_files(self.manifests, re.compile(r"[A-Za-z0-9._-]+\.jsonl"))

    def records(self) -> tuple[list[dict], int]:
        """(every complete record with a valid key, number of lines that are not one), read
        whole from every manifest: for ``verify`` and audits, not the hot path."""
        out, bad = [], 0
        for f in self.manifest_files():
            with contextlib.suppress(OSError):
                for line in f.read_bytes().splitlines():
                    if not line.strip():
                        continue
                    rec = _record(line)
                    if rec is None:
                        bad += 1
                    else:
                        out.append(rec)
        return out, bad

    def _index(self) -> dict[str, set[str]]:
        """key -> sha256 of the manifests' complete lines, each file read on from where it
        stopped (other processes append); a torn, unparsable or invalid-key line is skipped."""
        for f in self.manifest_files():
            upto = self._read_upto.get(f, 0)
            try:
                with open(f, "rb") as fh:
                    fh.seek(upto)
                    data = fh.read()
            except OSError:
                continue
            end = data.rfind(b"\n") + 1  # a line still being written is read next time
            for line in data[:end].splitlines():
                rec = _record(line)
                if rec is not None:
                    self._hashes.setdefault(rec["key"], set()).add(rec["sha256"])
            self._read_upto[f] = upto + end
        return self._hashes

    def _shard_fd(self, key: str) -> int:
        """The key's shard folder, opened without following a link (OSError if it is one)."""
        return os.open(self.root / key[:2], os.O_RDONLY | _DIRECTORY | _NOFOLLOW)

    def _read(self, key: str) -> tuple[bytes, tuple[int, int]]:
        """The entry's bytes and (device, inode); FileNotFoundError if absent; OSError if its
        shard or file is a link or not a regular file."""
        if not valid_key(key):
            raise ValueError(f"not a cache key (32 hex digits): {key!r}")
        dfd = self._shard_fd(key)
        try:
            fd = os.open(f"{key}.png", os.O_RDONLY | _NOFOLLOW, dir_fd=dfd)
        finally:
            os.close(dfd)
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise OSError(f"{key}.png is not a regular file")
            return fh.read(), (st.st_dev, st.st_ino)

    def check(self, key: str) -> tuple[Image.Image | None, str]:
        """(image, status): status 'ok', 'missing' (no file), 'unlisted' (a file without a
        manifest record: a legacy entry, a record not yet appended, or a torn one) or a reason
        it is bad."""
        image, status, _ = self._check(key)
        return image, status

    def _check(self, key: str):
        try:
            data, ident = self._read(key)
        except FileNotFoundError:
            return None, "missing", None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR) or exc.errno is None:
                return None, "not a regular file in a real shard folder (a link?)", None
            return None, f"unreadable ({exc.strerror or exc})", None
        digest = hashlib.sha256(data).hexdigest()
        want = self._hashes.get(key) or self._index().get(key)
        if want is not None and digest not in want:
            # another writer's record may have been appended since the index was read
            want = self._index().get(key)
            if digest not in want:
                return None, "content does not match its manifest hash", ident
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                image = im.convert("RGB")
        except Exception as exc:  # noqa: BLE001 - any decode failure is a corrupt entry
            return None, f"not a readable PNG ({type(exc).__name__})", ident
        return image, "ok" if want is not None else "unlisted", ident

    def _remove(self, key: str, ident) -> bool:
        """Unlink the entry if it is still the file that was read (same device and inode) and a
        regular file in a real shard folder; never follows a link."""
        if ident is None:
            return False
        try:
            dfd = self._shard_fd(key)
        except OSError:
            return False
        try:
            st = os.stat(f"{key}.png", dir_fd=dfd, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != tuple(ident):
                return False
            os.unlink(f"{key}.png", dir_fd=dfd)
            return True
        except OSError:
            return False
        finally:
            os.close(dfd)

    def get(self, key: str) -> Image.Image | None:
        """The cached image, or None: never cached, or a bad entry (counted in ``repaired``)."""
        image, status, ident = self._check(key)
        if image is None and status != "missing":
            self.repaired += 1
            self._remove(key, ident)
        return image

    def put(self, key: str, image: Image.Image, meta: dict, *, _retry: bool = True) -> Image.Image:
        """Store ``image`` under ``key`` unless another writer stored one first; returns the
        image the cache holds for ``key`` (the other writer's when it won and its entry is
        good), so that every process uses the same pixels."""
        data = png_bytes(image)
        # no fsync per image (0.4 ms each, 5 s of a cold main job): an entry a power cut
        # damages fails its hash check on the next read and is regenerated
        path = self.path(key)
        if os.path.islink(path.parent):
            raise OSError(f"{path.parent}: a link where the cache expects a shard folder")
        if not link_new_bytes(path, data):
            held, status, ident = self._check(key)
            if held is not None:
                return held
            if _retry and status != "unlisted" and self._remove(key, ident):  # a bad leftover
                return self.put(key, image, meta, _retry=False)
            return image
        digest = hashlib.sha256(data).hexdigest()
        line = json.dumps({**meta, "key": key, "sha256": digest}, sort_keys=True) + "\n"
        if self._own is None:
            self.manifests.mkdir(parents=True, exist_ok=True)
            self._own = self.manifests / writer_name()
        fd = os.open(self._own, os.O_WRONLY | os.O_CREAT | os.O_APPEND | _NOFOLLOW, 0o666)
        try:
            os.write(fd, line.encode())  # one write call, one writer: a kill cannot tear it
        finally:
            os.close(fd)
        self._hashes.setdefault(key, set()).add(digest)
        return image


def _record(line: bytes) -> dict | None:
    """A manifest line as a record with a valid key and a sha256, else None."""
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    if not isinstance(rec, dict) or not valid_key(rec.get("key")):
        return None
    sha = rec.get("sha256")
    if not isinstance(sha, str) or re.fullmatch(r"[0-9a-f]{64}", sha) is None:
        return None
    return rec


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
    def name(self) -> str:
        return self.model.name

    @property
    def family(self) -> str:
        return self.model.family

    @property
    def guidance_embedded(self) -> bool:
        return self.model.guidance_embedded

    @property
    def resolution(self) -> int:
        return self.model.resolution

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

    def with_model(self, wrap):
        """``wrap(model)`` (an adapted view of the same model) behind the same cache and
        counters (an episode's LoRA: its images keyed by its own fingerprint)."""
        return CachedGenerator(wrap(self.model), self.cache, self._counts)

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
                out[i] = self.cache.put(key, im, meta)
            self._counts["generated"] += len(idx)
        return out


def verify_cache(root: str | os.PathLike, *, repair: bool = False) -> dict:
    """Check every entry of a cache folder: counts of ok / missing / bad / unlisted images, of
    manifest lines that are no record (torn, or a key that is not one), of links skipped, of
    backbone-feature memo entries ok / bad, and the bad keys.

    Only names the cache itself makes are looked at: two-hex-digit shard folders that are real
    folders (a linked one is counted in ``links_skipped``, never entered) holding regular files
    ``<key>.png``; keys from manifests are checked the same way and never turned into a path
    outside. ``repair``: remove the bad images and feature entries — each re-read against a
    fresh index first and removed only if it is still the same regular file — so the next run
    regenerates exactly those. Safe beside live writers: no manifest is rewritten.
    """
    from genie_plugin.errors import GenieError

    root = Path(root)
    if not root.is_dir():
        raise GenieError(f"{root}: no such cache folder")
    cache = AugmentationCache(root)
    records, torn = cache.records()
    listed = {r["key"] for r in records}
    files, links = _entry_keys(root, re.compile(r"[0-9a-f]{2}"), ".png")
    report = {
        "ok": 0, "missing": 0, "bad": 0, "unlisted": 0, "torn_lines": torn,
        "links_skipped": links, "bad_keys": [], "features_ok": 0, "features_bad": 0,
    }  # fmt: skip
    bad: dict[str, tuple] = {}
    for key in sorted(listed | files):
        image, status, ident = cache._check(key)
        if status == "ok":
            report["ok"] += 1
        elif status in ("missing", "unlisted"):
            report[status] += 1
        else:
            bad[key] = ident
            report["bad_keys"].append(f"{key}: {status}")
    report["bad"] = len(bad)
    features = _verify_features(root / "features", repair=repair)
    report["features_ok"], report["features_bad"] = features["ok"], len(features["bad"])
    report["links_skipped"] += features["links"]
    report["bad_keys"] += [f"features/{name}: {why}" for name, why in features["bad"]]
    if repair:
        removed = 0
        for key, ident in bad.items():
            _, status, now = cache._check(key)  # a fresh look: a record appended meanwhile
            if status not in ("ok", "missing", "unlisted") and now == ident:
                removed += cache._remove(key, ident)
        report["repaired"] = removed + features["removed"]
        report["done_marks_cleared"] = _clear_done_marks(root) if removed else 0
    return report


def _clear_done_marks(root: Path) -> int:
    """Drop the `bench generate` claims' ``<block>.done`` marks (``CACHE/claims/*/``), so that
    the next `bench generate` revisits every block and regenerates what a repair removed
    (blocks whose images are all cached cost one cache read each). Regular files only, in real
    folders; a rank working meanwhile at worst re-reads a block from the cache."""
    claims = root / "claims"
    if claims.is_symlink() or not claims.is_dir():
        return 0
    cleared = 0
    for folder in claims.iterdir():
        if folder.is_symlink() or not folder.is_dir():
            continue
        for mark in folder.iterdir():
            if (
                re.fullmatch(r"[0-9]+\.done", mark.name)
                and mark.is_file()
                and not mark.is_symlink()
            ):
                with contextlib.suppress(FileNotFoundError):
                    mark.unlink()
                    cleared += 1
    return cleared


def _entry_keys(root: Path, shard_re: re.Pattern, suffix: str) -> tuple[set[str], int]:
    """(keys of the regular ``<key><suffix>`` files in the real shard folders under ``root``,
    number of linked shard folders or files skipped)."""
    keys, links = set(), 0
    try:
        with os.scandir(root) as it:
            shards = [e for e in it if shard_re.fullmatch(e.name)]
    except OSError:
        return keys, 0
    for e in shards:
        if e.is_symlink():
            links += 1
            continue
        if not e.is_dir(follow_symlinks=False):
            continue
        with os.scandir(e.path) as it:
            for f in it:
                stem = f.name[: -len(suffix)] if f.name.endswith(suffix) else None
                if stem is None or not stem.startswith(e.name):
                    continue
                if f.is_symlink():
                    links += 1
                elif f.is_file(follow_symlinks=False):
                    keys.add(stem)
    return keys, links


def _verify_features(folder: Path, *, repair: bool) -> dict:
    """The backbone-feature memo (``fewshot.backbones.MemoEmbedder``): every entry is a sealed
    ``.npy`` (:func:`genie_plugin.io.unseal`); a zeroed or truncated one is bad."""
    from genie_plugin.io import unseal

    out = {"ok": 0, "bad": [], "links": 0, "removed": 0}
    if not folder.is_dir() or folder.is_symlink():
        out["links"] += folder.is_symlink()
        return out
    names, out["links"] = _entry_keys(folder, re.compile(r"[0-9a-f]{2}"), ".npy")
    for name in sorted(names):
        p = folder / name[:2] / f"{name}.npy"
        try:
            with open(p, "rb") as fh:
                data = fh.read()
                ident = (os.fstat(fh.fileno()).st_dev, os.fstat(fh.fileno()).st_ino)
        except OSError:
            continue
        if unseal(data) is not None:
            out["ok"] += 1
            continue
        out["bad"].append((f"{name}.npy", "sealed hash does not match (zeroed, truncated?)"))
        if repair:
            with contextlib.suppress(OSError):
                st = os.lstat(p)
                if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) == ident:
                    os.unlink(p)
                    out["removed"] += 1
    return out
