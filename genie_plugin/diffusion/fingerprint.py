"""What identifies a model's weights: content hashes of the files the loader reads.

A fingerprint goes into every generation key, so a changed tensor never reads old cache
entries. Each file is hashed once per (path, size, mtime) (:func:`genie_plugin.io.file_sha256`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from genie_plugin.errors import ModelFormatError


def _hash_memo_dir() -> Path:
    from genie_plugin.paths import cache_root

    return cache_root() / "file-hashes"


def content_hash(path: Path) -> str:
    """Full sha256 of one file (memoised on path + size + mtime, see :func:`io.file_sha256`)."""
    from genie_plugin.io import file_sha256

    return file_sha256(path, _hash_memo_dir())


#: Top-level files of a model folder that change the images: the pipeline's index and the
#: sampler settings this plugin reads (``genie_sampler.json``).
TOP_LEVEL_FILES: tuple[str, ...] = ("model_index.json", "genie_sampler.json")

#: The weight files ``from_pretrained`` picks in a component folder, in its order of
#: preference (no ``variant``, safetensors first), by loader kind.
_WEIGHT_NAMES = {
    "diffusers": ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"),
    "transformers": ("model.safetensors", "pytorch_model.bin"),
}
#: What each tokenizer reads: the slow CLIP tokenizer (``tokenizer.json`` is the fast one's, not
#: read), T5's fast tokenizer (``tokenizer.json``; ``spiece.model`` where it has one).
_TOKENIZER_FILES = {
    "clip-tokenizer": ("vocab.json", "merges.txt", "tokenizer_config.json",
                       "special_tokens_map.json", "added_tokens.json"),
    "t5-tokenizer": ("tokenizer.json", "spiece.model", "tokenizer_config.json",
                     "special_tokens_map.json", "added_tokens.json"),
}  # fmt: skip


def _components(folder: Path):
    """The component folders of a model folder's family (SD 1.x/2.x where it cannot be told:
    the load then says why)."""
    from genie_plugin.diffusion.families import family, family_name
    from genie_plugin.diffusion.families.loaders import read_index

    try:
        return family(family_name(read_index(str(folder)), folder)).components
    except ModelFormatError:
        return family("sd").components


def _weights(sub: Path, names: tuple[str, ...]) -> list[Path]:
    """The weight files of one component: a single file, or a sharded one's index and the
    shards it names. ``.fp16``/``.non_ema`` variants and a second format are not read."""
    import json

    for name in names:
        if (sub / name).is_file():
            return [sub / name]
        index = sub / f"{name}.index.json"
        if index.is_file():
            try:
                shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                raise ModelFormatError(
                    f"{index}: not a sharded-weights index ({type(exc).__name__}); re-download "
                    "the component"
                ) from None
            for shard in shards:
                if "/" in shard or "\\" in shard or shard.startswith("."):
                    raise ModelFormatError(f"{index}: shard name {shard!r} leaves the folder")
            return [index, *(sub / shard for shard in shards)]
    return []


def loader_files(folder: Path, components=None) -> list[Path]:
    """Exactly the files the loader reads of a diffusers model folder (or hub snapshot), for
    the components of its family."""
    folder = Path(folder)
    files = [folder / n for n in TOP_LEVEL_FILES]
    for comp in components or _components(folder):
        sub = folder / comp.folder
        if comp.kind in _WEIGHT_NAMES:
            files += [sub / "config.json", *_weights(sub, _WEIGHT_NAMES[comp.kind])]
        elif comp.kind in _TOKENIZER_FILES:
            files += [sub / n for n in _TOKENIZER_FILES[comp.kind]]
        else:
            files.append(sub / "scheduler_config.json")
    return [p for p in files if p.is_file()]


def folder_fingerprint(folder: Path) -> str:
    """Content fingerprint of a model folder: the full sha256 of every file the loader reads.

    Any changed tensor (a fine-tune that touches middle layers too) changes it; files the
    loader never opens (fp16/non-EMA variants, a full .ckpt, the safety checker, a README) do
    not. Each file is hashed once per (path, size, mtime), and a hub snapshot's LFS files are
    named by their sha256 already: reloading a multi-GB model costs nothing. A hub snapshot
    and a local copy of it (``--local-dir``, ``save_pretrained`` of the same bytes) share it.
    """
    h = hashlib.sha256()
    folder = Path(folder)
    for p in sorted(loader_files(folder), key=lambda p: p.relative_to(folder).as_posix()):
        rel = p.relative_to(folder).as_posix()
        h.update(f"{rel}\0{_file_digest(p)}\n".encode())
    return "sha256:" + h.hexdigest()[:16]


def _file_digest(path: Path) -> str:
    """sha256 of a file: a hub cache blob's own name when it is one (LFS blobs are named by
    their sha256 by the hub), else hashed (memoised)."""
    if path.is_symlink():
        target = path.resolve()
        name = target.name
        if target.parent.name == "blobs" and len(name) == 64 and _is_hex(name):
            return name
    return content_hash(path)


def _is_hex(s: str) -> bool:
    return all(c in "0123456789abcdef" for c in s)


def single_file_fingerprint(path: Path, config: str | None) -> str:
    """A single checkpoint file, plus the architecture folder (``--config``) it is read with."""
    h = hashlib.sha256(f"file\0{content_hash(path)}\n".encode())
    if config is not None and Path(config).expanduser().is_dir():
        h.update(f"config\0{folder_fingerprint(Path(config).expanduser())}\n".encode())
    elif config is not None:
        h.update(f"config\0{config}\n".encode())  # a hub id: its name
    return "file:sha256:" + h.hexdigest()[:16]


def check_model_folder(folder: Path, components=None) -> None:
    """Raise ModelFormatError naming the first missing component of a diffusers folder."""
    if not (folder / "model_index.json").is_file():
        raise ModelFormatError(
            f"{folder}: not a diffusers model folder (no model_index.json); save one with "
            "pipeline.save_pretrained(folder) or pass a single .safetensors/.ckpt file"
        )
    for c in components or _components(folder):
        comp, sub = c.folder, folder / c.folder
        if c.optional and not sub.exists():
            continue
        if c.kind.endswith("tokenizer"):
            ok = (sub / "vocab.json").is_file() or (sub / "tokenizer.json").is_file()
            wanted = "vocab.json + merges.txt" if c.kind == "clip-tokenizer" else "tokenizer.json"
        elif c.kind == "scheduler":
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
