"""Model families, one module each, and which one a model folder (or hub snapshot) is.

A folder's family comes from its ``model_index.json`` pipeline class, or failing that from the
component folders it has; a folder of a family this plugin does not run is refused in one line
that names it.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from genie_plugin.errors import ModelFormatError

#: family name -> "module:class" (imported when used)
FAMILIES: dict[str, str] = {
    "sd": "genie_plugin.diffusion.families.sd:SD",
    "sdxl": "genie_plugin.diffusion.families.sdxl:SDXL",
    "sd3": "genie_plugin.diffusion.families.sd3:SD3",
    "flux": "genie_plugin.diffusion.families.flux:Flux",
}

#: pipeline classes (``model_index.json``'s ``_class_name``) by family
_BY_CLASS = {
    "sd": ("StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline",
           "LatentConsistencyModelPipeline", "LatentConsistencyModelImg2ImgPipeline",
           "StableDiffusionInpaintPipeline"),
    "sdxl": ("StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline"),
    "sd3": ("StableDiffusion3Pipeline", "StableDiffusion3Img2ImgPipeline"),
    "flux": ("FluxPipeline", "FluxImg2ImgPipeline"),
}  # fmt: skip

_LOADED: dict[str, object] = {}


def family(name: str):
    """The family object of ``name`` (one instance per family)."""
    if name not in FAMILIES:
        raise ModelFormatError(
            f"unknown model family {name!r}; families: {', '.join(sorted(FAMILIES))}"
        )
    if name not in _LOADED:
        module, _, cls = FAMILIES[name].partition(":")
        _LOADED[name] = getattr(importlib.import_module(module), cls)()
    return _LOADED[name]


def family_name(index: dict, folder: Path | None = None, *, where: str = "model") -> str:
    """The family of a pipeline from its ``model_index.json`` (and its folders, if local)."""
    cls = index.get("_class_name")
    for name, classes in _BY_CLASS.items():
        if cls in classes:
            return name
    has = set(index) | ({p.name for p in folder.iterdir() if p.is_dir()} if folder else set())
    if cls is None:
        if "transformer" in has:
            return "sd3" if "text_encoder_3" in has else "flux"
        if "unet" in has:
            return "sdxl" if "text_encoder_2" in has else "sd"
    runs = ", ".join(c for cs in _BY_CLASS.values() for c in cs if c.endswith("Pipeline"))
    raise ModelFormatError(
        f"{where}: a {cls or 'pipeline without a UNet or transformer'}, which this plugin does "
        f"not run; it runs {runs}"
    )


def of(model):
    """The family of a model or any view of one (:class:`~genie_plugin.diffusion.protocol.
    ModelView`: every view states its family; none is assumed)."""
    return family(model.family)
