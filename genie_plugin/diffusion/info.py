"""What a model is, without loading its weights: family, the files its fingerprint hashes,
the sampler settings it recommends, the backend choice and exports cached for it.

``genie model info`` prints this. Why: a generation key names a model only by its content
fingerprint, so a user sharing a cache (or comparing runs) needs to see which files that
fingerprint covers, and which family the plugin takes the folder for, before anything runs.
"""

from __future__ import annotations

import json
from pathlib import Path


def _family(folder: Path) -> dict:
    from genie_plugin.diffusion.families import family, family_name
    from genie_plugin.diffusion.families.loaders import read_index
    from genie_plugin.errors import ModelFormatError

    index = read_index(str(folder))
    cls = index.get("_class_name")
    pred = _json(folder / "scheduler" / "scheduler_config.json").get("prediction_type", "epsilon")
    try:
        fam = family(family_name(index, folder, where=str(folder)))
    except ModelFormatError as exc:
        return {"id": "unknown", "name": f"unknown ({cls or 'no model_index.json'})",
                "pipeline": cls, "prediction": pred, "supported": False,
                "why": str(exc)}  # fmt: skip
    return {
        "id": fam.name,
        "name": fam.title,
        "pipeline": cls,
        "prediction": "flow matching" if fam.flow else pred,
        "supported": True,
        "network": fam.network,
        "components": [c.folder for c in fam.components if (folder / c.folder).exists()],
        "schedulers": list(fam.schedulers),
    }


def _json(path: Path) -> dict:
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


def _costs(folder: Path, fam: dict, rec: dict) -> dict | None:
    """Rows per output at the recommended sampler (from the config files: no weights)."""
    if not fam.get("supported"):
        return None
    from genie_plugin.diffusion.costs import PlanView, cost_rows
    from genie_plugin.diffusion.settings import SamplerConfig

    net = _json(folder / fam["network"] / "config.json")
    vae = _json(folder / "vae" / "config.json")
    sched = _json(folder / "scheduler" / "scheduler_config.json")
    from genie_plugin.diffusion.families import family

    adapter = family(fam["id"])
    vsf = 2 ** (len(vae.get("block_out_channels", [0, 0, 0, 0])) - 1)
    view = PlanView(fam["id"], sched, SamplerConfig(), resolution=0,
                    latent_channels=int(vae.get("latent_channels", 4)), vae_scale_factor=vsf,
                    patch_size=int(net.get("patch_size", 1) or 1),
                    guidance_embedded=net.get("time_cond_proj_dim") is not None,
                    guidance_embeds=bool(net.get("guidance_embeds")))  # fmt: skip
    view.unet.config.sample_size = int(net.get("sample_size", 64))
    view.resolution = adapter.native_resolution(view)
    # the family's own advice, as load_generator gives it, where the folder has none
    advice = rec or adapter.recommended_sampler(view)
    out = {}
    for meaning in ("strength", "level"):
        v = view.with_sampler(**advice, ratio_meaning=meaning)
        v.resolution = int(v.sampler.resolution or view.resolution)
        out[meaning] = cost_rows(v)
    return {"sampler": advice, "rows_per_output": out}


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

        hit = try_to_load_from_cache(str(loc), "model_index.json")
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
            note="the family of a single file is what diffusers infers from its keys at load "
            "(or its --config folder's)",
            files=[{"path": p.name, "bytes": p.stat().st_size}],
            sampler={"source": "reference", "settings": {}},
        )
        return info
    files = loader_files(folder)
    rec = recommended_sampler(folder)
    fp = folder_fingerprint(folder)
    fam = _family(folder)
    info.update(
        location=str(folder),
        family=fam,
        cost=_costs(folder, fam, rec),
        fingerprint=fp,
        files=[
            {"path": f.relative_to(folder).as_posix(), "bytes": f.stat().st_size} for f in files
        ],
        sampler={"source": SAMPLER_DEFAULTS_FILE if rec else "family", "settings": rec},
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
