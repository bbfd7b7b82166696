"""What a model is, without loading its weights: family, the files its fingerprint hashes,
the sampler settings it recommends, the backend choice and exports cached for it.

``genie model info`` prints this. Why: a generation key names a model only by its content
fingerprint, so a user sharing a cache (or comparing runs) needs to see which files that
fingerprint covers, and which family the plugin takes the folder for, before anything runs.
"""

from __future__ import annotations

import json
from pathlib import Path

#: ``model_index.json``'s pipeline class → (family id, name, supported by this plugin).
FAMILIES: dict[str, tuple[str, str, bool]] = {
    "StableDiffusionPipeline": ("sd", "Stable Diffusion 1.x/2.x", True),
    "StableDiffusionImg2ImgPipeline": ("sd", "Stable Diffusion 1.x/2.x", True),
    "StableDiffusionXLPipeline": ("sdxl", "SDXL", False),
    "StableDiffusionXLImg2ImgPipeline": ("sdxl", "SDXL (refiner)", False),
    "LatentConsistencyModelPipeline": ("lcm", "LCM", False),
    "StableDiffusion3Pipeline": ("sd3", "Stable Diffusion 3", False),
    "FluxPipeline": ("flux", "Flux.1", False),
}


def _family(folder: Path) -> dict:
    def read(rel: str) -> dict:
        try:
            d = json.loads((folder / rel).read_text())
        except (OSError, ValueError):
            return {}
        return d if isinstance(d, dict) else {}

    cls = read("model_index.json").get("_class_name")
    fid, name, supported = FAMILIES.get(
        cls, ("unknown", f"unknown ({cls or 'no model_index.json'})", False)
    )
    pred = read("scheduler/scheduler_config.json").get("prediction_type", "epsilon")
    return {
        "id": fid,
        "name": name,
        "pipeline": cls,
        "prediction": pred,
        "supported": supported and (folder / "unet").is_dir(),
    }


def model_info(model: str, device=None) -> dict:
    """A JSON-ready description of ``model`` (a built-in name, folder, single file or hub id
    in the HF cache); never loads weights or downloads."""
    from genie_plugin.diffusion.fingerprint import (
        folder_fingerprint,
        loader_files,
        single_file_fingerprint,
    )
    from genie_plugin.diffusion.loading import (
        SAMPLER_DEFAULTS_FILE,
        cached_backend_choice,
        recommended_sampler,
        resolve_model,
    )
    from genie_plugin.diffusion.onnx_backend import export_dir

    kind, loc = resolve_model(model)
    info: dict = {"model": str(model), "kind": kind}
    folder = None
    if kind == "builtin":
        from genie_plugin import plugins

        folder = Path(plugins.load(plugins.MODELS, str(loc))())
    elif kind == "folder":
        folder = Path(loc)
    elif kind == "hub":
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(str(loc), "unet/config.json")
        if isinstance(hit, str):
            folder = Path(hit).parent.parent
        else:
            info["location"] = None
            info["note"] = (
                f"{loc} is not in the Hugging Face cache: nothing to describe without "
                f"downloading (`huggingface-cli download {loc}`)"
            )
            return info
    if kind == "file":
        p = Path(loc)
        info.update(
            location=str(p),
            family={
                "id": "sd",
                "name": "Stable Diffusion 1.x/2.x (single file)",
                "supported": True,
                "prediction": "from --config",
            },  # fmt: skip
            fingerprint=single_file_fingerprint(p, None),
            files=[{"path": p.name, "bytes": p.stat().st_size}],
            sampler={"source": "reference", "settings": {}},
        )
        return info
    files = loader_files(folder)
    rec = recommended_sampler(folder)
    fp = folder_fingerprint(folder)
    info.update(
        location=str(folder),
        family=_family(folder),
        fingerprint=fp,
        files=[
            {"path": f.relative_to(folder).as_posix(), "bytes": f.stat().st_size} for f in files
        ],
        sampler={"source": SAMPLER_DEFAULTS_FILE if rec else "reference", "settings": rec},
    )
    choice = cached_backend_choice(str(model), device) if kind != "hub" else None
    info["backend_choice"] = choice.summary() if choice is not None else None
    exports = {}
    for fp16 in (False, True):
        d = export_dir(fp, fp16)
        if (d / "genie_onnx.json").is_file():
            exports["fp16" if fp16 else "fp32"] = str(d)
    info["onnx_exports"] = exports
    return info
