"""Component loading for every family: each folder with the class its ``model_index.json``
names (diffusers' and transformers' own ``from_pretrained``), restricted to model, tokenizer
and scheduler classes so a crafted index cannot make the loader build anything else."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from genie_plugin.errors import ModelFormatError

#: The class a component kind falls back to when the index does not name one.
_DEFAULT_CLASS = {
    ("diffusers", "unet"): ("diffusers", "UNet2DConditionModel"),
    ("diffusers", "vae"): ("diffusers", "AutoencoderKL"),
    ("diffusers", "transformer"): ("diffusers", "SD3Transformer2DModel"),
    ("transformers", "text_encoder"): ("transformers", "CLIPTextModel"),
    ("transformers", "text_encoder_2"): ("transformers", "CLIPTextModelWithProjection"),
    ("transformers", "text_encoder_3"): ("transformers", "T5EncoderModel"),
    ("clip-tokenizer", ""): ("transformers", "CLIPTokenizer"),
    ("t5-tokenizer", ""): ("transformers", "T5TokenizerFast"),
}


def read_index(source: str, **kw) -> dict:
    """``model_index.json`` of a folder or a hub id ({} where it has none)."""
    p = Path(source).expanduser()
    if p.is_dir():
        f = p / "model_index.json"
        if not f.is_file():
            return {}
    else:
        from huggingface_hub import hf_hub_download

        try:
            f = Path(hf_hub_download(source, "model_index.json",
                                     local_files_only=kw.get("local_files_only", False)))  # fmt: skip
        except Exception:  # noqa: BLE001 - offline and not cached, or a repo without one
            return {}
    try:
        d = json.loads(f.read_text())
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"{f}: not valid JSON ({exc}); re-download the model") from None
    if not isinstance(d, dict):
        raise ModelFormatError(f"{f}: expected a JSON object; re-download the model")
    return d


def _class(index: dict, comp) -> type:
    entry = index.get(comp.folder)
    if isinstance(entry, list) and len(entry) == 2 and all(isinstance(e, str) for e in entry):
        lib, name = entry
    else:
        key = (comp.kind, comp.folder if comp.kind in ("diffusers", "transformers") else "")
        lib, name = _DEFAULT_CLASS[key]
    if lib not in ("diffusers", "transformers"):
        raise ModelFormatError(
            f"model_index.json: component {comp.folder!r} names library {lib!r}; only diffusers "
            "and transformers classes load here"
        )
    cls = getattr(importlib.import_module(lib), name, None)
    if not isinstance(cls, type) or not _allowed(cls, comp.kind):
        raise ModelFormatError(
            f"model_index.json: component {comp.folder!r} names {lib}.{name}, which is not a "
            f"{comp.kind} class; re-save the pipeline with diffusers"
        )
    return cls


def _allowed(cls: type, kind: str) -> bool:
    from diffusers import ModelMixin, SchedulerMixin
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    base = {
        "diffusers": ModelMixin,
        "transformers": PreTrainedModel,
        "clip-tokenizer": PreTrainedTokenizerBase,
        "t5-tokenizer": PreTrainedTokenizerBase,
        "scheduler": SchedulerMixin,
    }[kind]
    return issubclass(cls, base)


def load_components(components, source: str, dtype, **kw) -> tuple[dict, Any]:
    """Each component of ``components`` from ``source`` (folder or hub id); returns the parts
    by folder name (None for an optional one that is absent) and the scheduler config."""
    from diffusers import DPMSolverMultistepScheduler

    index = read_index(source, **kw)
    parts: dict[str, Any] = {}
    sched_cfg = None
    for comp in components:
        if comp.kind == "scheduler":
            sched_cfg = DPMSolverMultistepScheduler.load_config(source, subfolder=comp.folder, **kw)
            continue
        if comp.optional and (index.get(comp.folder) in (None, [None, None])):
            parts[comp.folder] = None
            continue
        cls = _class(index, comp)
        if comp.kind == "diffusers":
            parts[comp.folder] = cls.from_pretrained(source, subfolder=comp.folder,
                                                     torch_dtype=dtype, **kw)  # fmt: skip
        elif comp.kind == "transformers":
            parts[comp.folder] = cls.from_pretrained(source, subfolder=comp.folder,
                                                     dtype=dtype, **kw)  # fmt: skip
        else:
            parts[comp.folder] = cls.from_pretrained(source, subfolder=comp.folder, **kw)
    return parts, sched_cfg
