"""What identifies a model's weights: content hashes of the files the loader reads.

A fingerprint goes into every generation key, so a changed tensor never reads old cache
entries. Each file is hashed once per (path, size, mtime) (:func:`genie_plugin.io.file_sha256`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from genie_plugin.errors import ModelFormatError

#: Component folders a diffusers SD 1.x/2.x folder must have.
REQUIRED_COMPONENTS: tuple[str, ...] = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")


def _hash_memo_dir() -> Path:
    from genie_plugin.paths import cache_root

    return cache_root() / "file-hashes"


def content_hash(path: Path) -> str:
    """Full sha256 of one file (memoised on path + size + mtime, see :func:`io.file_sha256`)."""
    from genie_plugin.io import file_sha256

    return file_sha256(path, _hash_memo_dir())


#: What a model folder's fingerprint covers: the components the loader reads, and the
#: top-level JSON (model_index.json, genie_sampler.json). Other files in a hub snapshot (fp16
#: variants, a full .ckpt, the safety checker) do not change the images and are not hashed.
FINGERPRINT_PARTS = REQUIRED_COMPONENTS


def folder_fingerprint(folder: Path) -> str:
    """Content fingerprint of a model folder: the full sha256 of every file the loader reads.

    Any changed tensor (a fine-tune that touches middle layers too) changes it; each file is
    hashed once per (path, size, mtime), so reloading a multi-GB model costs nothing.
    """
    h = hashlib.sha256()
    folder = Path(folder)
    files = [p for p in folder.glob("*.json") if p.is_file()]
    for part in FINGERPRINT_PARTS:
        files += [p for p in (folder / part).rglob("*") if p.is_file()]
    for p in sorted(files):
        rel = p.relative_to(folder).as_posix()
        if any(s.startswith(".") for s in rel.split("/")):
            continue
        h.update(f"{rel}\0{content_hash(p)}\n".encode())
    return "sha256:" + h.hexdigest()[:16]


def single_file_fingerprint(path: Path, config: str | None) -> str:
    """A single checkpoint file, plus the architecture folder (``--config``) it is read with."""
    h = hashlib.sha256(f"file\0{content_hash(path)}\n".encode())
    if config is not None and Path(config).expanduser().is_dir():
        h.update(f"config\0{folder_fingerprint(Path(config).expanduser())}\n".encode())
    elif config is not None:
        h.update(f"config\0{config}\n".encode())  # a hub id: its name
    return "file:sha256:" + h.hexdigest()[:16]


def check_model_folder(folder: Path) -> None:
    """Raise ModelFormatError naming the first missing component of a diffusers folder."""
    if not (folder / "model_index.json").is_file():
        raise ModelFormatError(
            f"{folder}: not a diffusers model folder (no model_index.json); save one with "
            "pipeline.save_pretrained(folder) or pass a single .safetensors/.ckpt file"
        )
    for comp in REQUIRED_COMPONENTS:
        sub = folder / comp
        if comp == "tokenizer":
            ok = (sub / "vocab.json").is_file() or (sub / "tokenizer.json").is_file()
            wanted = "vocab.json + merges.txt"
        elif comp == "scheduler":
            ok = (sub / "scheduler_config.json").is_file()
            wanted = "scheduler_config.json"
        else:
            has_cfg = (sub / "config.json").is_file()
            has_w = sub.is_dir() and any(
                f.suffix in (".safetensors", ".bin") for f in sub.iterdir() if f.is_file()
            )
            ok = has_cfg and has_w
            wanted = "config.json + *.safetensors weights"
        if not ok:
            raise ModelFormatError(
                f"{folder}: model folder is missing component '{comp}' (expected {sub}/ with "
                f"{wanted}); re-download or re-save the full pipeline"
            )
