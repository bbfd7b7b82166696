"""LoRA adapters (LCM-LoRA, TCD, a style or subject LoRA) fused into a loaded model.

Loaded with diffusers' own ``load_lora_weights`` on a pipeline over the model's modules, then
fused and unloaded: the modules are plain again, with the adapted weights in them, so every
backend (eager, CUDA graphs, torch.compile, an ONNX export) runs exactly those weights. The
model's fingerprint becomes the base fingerprint combined with each adapter's file digest and
scale, so every key, ONNX export and backend choice of an adapted model is its own: a base-weight
export is never served to it (the ONNX backend checks an export's fingerprint).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

from genie_plugin.errors import ConfigError, ModelFormatError, ModelNotFoundError

_SUFFIX = ".safetensors"


@dataclass(frozen=True)
class AdapterSpec:
    """One ``--lora SOURCE[:SCALE]``: a .safetensors file, a folder holding one, or a hub id
    (``owner/name``, optionally ``owner/name/file.safetensors``)."""

    source: str
    scale: float = 1.0

    @classmethod
    def parse(cls, text: str, option: str = "--lora") -> AdapterSpec:
        src, scale = str(text), 1.0
        head, sep, tail = src.rpartition(":")
        if sep and head:
            try:
                scale = float(tail)
            except ValueError:
                pass  # a colon in the name itself
            else:
                src = head
        if not src or not math.isfinite(scale):
            raise ConfigError(
                f"{option} {text!r}: expected SOURCE[:SCALE] (a .safetensors file, a folder with "
                "one, or a hub id; SCALE a finite number, default 1)"
            )
        return cls(src, scale)


@dataclass(frozen=True)
class ResolvedAdapter:
    spec: AdapterSpec
    folder: Path
    weight_name: str
    sha256: str

    def record(self) -> dict:
        """As manifests record it (the digest and scale are what the fingerprint reads)."""
        return {"lora": self.spec.source, "file": self.weight_name, "sha256": self.sha256,
                "scale": self.spec.scale}  # fmt: skip


def resolve(spec: AdapterSpec, option: str = "--lora") -> ResolvedAdapter:
    """Find the adapter's one weight file (local, or in the HF cache / downloaded)."""
    from genie_plugin.diffusion.fingerprint import content_hash

    p = Path(spec.source).expanduser()
    if p.is_file():
        if p.suffix.lower() != _SUFFIX:
            raise ModelFormatError(
                f"{option} {spec.source}: a LoRA is a {_SUFFIX} file (diffusers/kohya format)"
            )
        folder, name = p.parent, p.name
    elif p.is_dir():
        folder, name = p, _one_file(p, spec, option)
    else:
        folder, name = _from_hub(spec, option)
    return ResolvedAdapter(spec, folder, name, content_hash(folder / name))


def _one_file(folder: Path, spec: AdapterSpec, option: str) -> str:
    files = sorted(f.name for f in folder.iterdir() if f.suffix == _SUFFIX and f.is_file())
    if len(files) != 1:
        what = f"no {_SUFFIX} file" if not files else \
            f"{len(files)} {_SUFFIX} files ({', '.join(files)})"  # fmt: skip
        raise ModelFormatError(f"{option} {spec.source}: {what} there; name the file itself")
    return files[0]


def _from_hub(spec: AdapterSpec, option: str) -> tuple[Path, str]:
    from huggingface_hub import snapshot_download

    from genie_plugin.diffusion.hub import HUB_ID, hub_offline

    parts = spec.source.split("/")
    repo, file = "/".join(parts[:2]), "/".join(parts[2:]) or None
    a_path = spec.source.startswith(("/", ".", "~")) or "\\" in spec.source
    if a_path or not HUB_ID.match(repo) or (file is not None and not file.endswith(_SUFFIX)):
        raise ModelNotFoundError(
            f"{option} {spec.source}: no such file or folder, and not a hub id "
            "(owner/name or owner/name/file.safetensors)"
        )
    offline = hub_offline()
    try:
        folder = Path(snapshot_download(repo, local_files_only=offline,
                                        allow_patterns=[file] if file else ["*" + _SUFFIX]))  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - hub errors are many types
        how = ("not in the Hugging Face cache and HF_HUB_OFFLINE=1 forbids downloading"
               if offline else f"download failed ({type(exc).__name__})")  # fmt: skip
        raise ModelNotFoundError(
            f"{option} {spec.source}: {how}; fetch it with `huggingface-cli download {repo}` "
            "or pass the .safetensors file"
        ) from None
    if file is None:
        file = _one_file(folder, spec, option)
    if not (folder / file).is_file():
        raise ModelNotFoundError(f"{option} {spec.source}: {file} is not in {repo}")
    return folder, file


def adapted_fingerprint(base: str, adapters: list[ResolvedAdapter]) -> str:
    """The base fingerprint with every adapter's content digest and scale, in order."""
    doc = json.dumps([base, [[a.sha256, a.spec.scale] for a in adapters]])
    return "lora:sha256:" + hashlib.sha256(doc.encode()).hexdigest()[:16]


def fuse_adapters(gen, specs, option: str = "--lora"):
    """``gen`` with the LoRAs fused into its modules (in place: load a fresh model for this)."""
    from dataclasses import replace

    adapters = [resolve(s, option) for s in specs]
    if not adapters:
        return gen
    pipe = gen.adapter.pipeline(gen)
    if not hasattr(pipe, "load_lora_weights"):
        raise ConfigError(f"{option}: {gen.adapter.title} pipelines take no LoRA in diffusers")
    names = [f"genie_lora_{i}" for i in range(len(adapters))]
    for name, a in zip(names, adapters, strict=True):
        try:
            pipe.load_lora_weights(str(a.folder), weight_name=a.weight_name, adapter_name=name)
        except Exception as exc:  # noqa: BLE001 - diffusers/peft raise many types here
            raise ModelFormatError(
                f"{option} {a.spec.source}: not a LoRA for {gen.adapter.title} "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
            ) from None
        loaded = {c for c, ns in pipe.get_list_adapters().items() if name in ns}
        if not loaded:
            raise ModelFormatError(
                f"{option} {a.spec.source}: none of its keys matches a layer of "
                f"{gen.adapter.title}; is it a LoRA for another model family?"
            )
    pipe.set_adapters(names, adapter_weights=[a.spec.scale for a in adapters])
    components = sorted({c for c, ns in pipe.get_list_adapters().items() if ns})
    pipe.fuse_lora(components=components, adapter_names=names)
    pipe.unload_lora_weights()  # plain modules again, the fused weights kept
    return replace(
        gen,
        fingerprint=adapted_fingerprint(gen.fingerprint, adapters),
        adapters=tuple(a.record() for a in adapters),
    )


def adapter_kind(record: dict) -> str:
    """What an adapter is made for, by its name: 'lcm', 'tcd' or '' (sampler advice only)."""
    name = f"{record['lora']}/{record['file']}".lower()
    return next((k for k in ("lcm", "tcd") if k in name), "")


def advice(adapters: tuple[dict, ...]) -> dict:
    """Sampler settings an LCM-/TCD-LoRA is made for (a model loaded with no sampler asked):
    the few steps it was distilled for, no classifier-free guidance rows."""
    kinds = {adapter_kind(a) for a in adapters}
    for kind in ("lcm", "tcd"):
        if kind in kinds:
            return {"scheduler": kind, "steps": 4, "guidance_scale": 1.0}
    return {}
