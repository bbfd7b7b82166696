"""Load a Stable-Diffusion-architecture model from a hub id, a folder or a single file.

Only diffusers' own model and scheduler classes are used; the sampler loop lives in
:mod:`genie_plugin.diffusion.sampler`. Hub ids are served from the Hugging Face cache and honour
``HF_HUB_OFFLINE``; nothing here patches a diffusers class.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from genie_plugin import plugins
from genie_plugin.diffusion.fingerprint import (
    check_model_folder,
    folder_fingerprint,
    single_file_fingerprint,
)
from genie_plugin.diffusion.hub import HUB_ID as _HUB_ID
from genie_plugin.diffusion.hub import hub_offline as _hub_offline
from genie_plugin.diffusion.model import DiffusionGenerator
from genie_plugin.errors import ModelFormatError, ModelNotFoundError

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")


def model_aliases() -> dict[str, str]:
    """Built-in model names -> what they are. Declared by the distributions that own them in
    the entry-point group ``genie_plugin.models`` (embedded, tiny-random), so this layer never
    imports the embedded default."""
    return {name: plugins.summary(plugins.MODELS, name) for name in plugins.names(plugins.MODELS)}


def _default_device_dtype(device, dtype):
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if dtype is None:
        dtype = torch.float16 if device.type == "cuda" else torch.float32
    elif isinstance(dtype, str):
        dtype = {"fp16": torch.float16, "fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    return device, dtype


def _from_components(folder_or_id: str, dtype, where: str, **kw):
    """The model's family, its components by folder name, scheduler config and index options."""
    from genie_plugin.diffusion.families import family, family_name
    from genie_plugin.diffusion.families.loaders import read_index

    index = read_index(folder_or_id, **kw)
    local = Path(folder_or_id).expanduser()
    # no index (a hub repo not cached, a folder without one): SD's loads say what is missing
    name = family_name(index, local if local.is_dir() else None, where=where) if index else "sd"
    fam = family(name)
    if local.is_dir():
        check_model_folder(local, fam.components)
    parts, sched_cfg = fam.load(folder_or_id, dtype, **kw)
    return name, parts, sched_cfg, fam.options(index)


def _load_hub(repo_id: str, dtype):
    offline = _hub_offline()
    try:
        parts = _from_components(repo_id, dtype, repo_id, local_files_only=offline)
    except ModelFormatError:
        raise
    except (OSError, ValueError) as exc:
        how = (
            "it is not in the Hugging Face cache and HF_HUB_OFFLINE=1 forbids downloading"
            if offline
            else f"download failed ({type(exc).__name__})"
        )
        raise ModelNotFoundError(
            f"model {repo_id!r}: not a local folder or file, and {how}. Fetch it with "
            f"`huggingface-cli download {repo_id}` on a machine with network (it lands in the HF "
            "cache), or pass a local diffusers folder or a .safetensors file"
        ) from None
    return (*parts, folder_fingerprint(_hub_snapshot(repo_id, offline)))


def _hub_snapshot(repo_id: str, offline: bool) -> Path:
    """The HF-cache snapshot folder the components were just read from. Its fingerprint is
    by content, as a local folder's (LFS blobs are named by their sha256: free); the pipeline's
    ``model_index.json``, which the component loads skip, is fetched when online (1 kB) so a
    snapshot and a downloaded folder of the same repo agree."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    with contextlib.suppress(Exception):  # offline, or a repo without one: content still counts
        hf_hub_download(repo_id, "model_index.json", local_files_only=offline)
    cached = try_to_load_from_cache(repo_id, "vae/config.json")
    if not isinstance(cached, str):
        raise ModelNotFoundError(
            f"model {repo_id!r}: loaded, but its snapshot is not in the HF cache "
            "(HF_HUB_CACHE changed meanwhile?), so its weights cannot be fingerprinted; "
            "download it with `huggingface-cli download` or pass a local folder"
        )
    return Path(cached).parent.parent


#: diffusers' single-file model types (``infer_diffusers_model_type``) by family
_SINGLE_FILE_FAMILY = (("xl", "sdxl"), ("playground", "sdxl"), ("sd3", "sd3"), ("flux", "flux"))


def _single_file_family(path: Path, config: str | None) -> str:
    """The family of a single checkpoint: its --config folder's, else what diffusers infers
    from the checkpoint's keys."""
    from genie_plugin.diffusion.families import family_name
    from genie_plugin.diffusion.families.loaders import read_index

    if config is not None:
        cfg = Path(config).expanduser()
        where = f"--config {config}"
        return family_name(read_index(config, local_files_only=_hub_offline()),
                           cfg if cfg.is_dir() else None, where=where)  # fmt: skip
    try:
        from diffusers.loaders.single_file_utils import (
            infer_diffusers_model_type,
            load_single_file_checkpoint,
        )

        kind = infer_diffusers_model_type(load_single_file_checkpoint(str(path)))
    except Exception:  # noqa: BLE001 - the load below says what is wrong with the file
        return "sd"
    return next((fam for prefix, fam in _SINGLE_FILE_FAMILY if kind.startswith(prefix)), "sd")


def _load_single_file(path: Path, dtype, config: str | None):
    from genie_plugin.diffusion.families import family

    name = _single_file_family(path, config)
    fam = family(name)
    kw: dict[str, Any] = {"torch_dtype": dtype}
    if config is not None:
        kw["config"] = config
    if _hub_offline():
        kw["local_files_only"] = True
    try:
        pipe = fam.single_file_pipeline().from_single_file(str(path), **kw)
    except Exception as exc:  # diffusers raises many types here
        raise ModelFormatError(
            f"{path}: could not load as a single-file {fam.title} checkpoint "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). Its "
            "architecture config comes from the HF cache; offline, pass --config with a local "
            "diffusers folder of the same architecture (e.g. stable-diffusion-v1-5)"
        ) from None
    parts = {k: v for k, v in pipe.components.items() if k != "scheduler"}
    options = {k: v for k, v in dict(pipe.config).items()
               if k in ("force_zeros_for_empty_prompt", "requires_aesthetics_score")}  # fmt: skip
    return name, parts, pipe.scheduler.config, options, single_file_fingerprint(path, config)


def resolve_model(model: str | os.PathLike) -> tuple[str, Path | str]:
    """Classify ``model`` as ('builtin'|'folder'|'file'|'hub', location), or raise."""
    s = str(model)
    if plugins.has(plugins.MODELS, s):
        return "builtin", s
    p = Path(s).expanduser()
    if p.is_dir():
        return "folder", p
    if p.is_file():
        if p.suffix.lower() not in SINGLE_FILE_SUFFIXES:
            raise ModelFormatError(
                f"{p}: unsupported model file type {p.suffix!r}; pass a .safetensors/.ckpt "
                "checkpoint or a diffusers folder"
            )
        return "file", p
    looks_like_path = (
        s.startswith((".", "/", "~"))
        or os.sep in s.strip("/").split("/", 1)[-1]
        or p.suffix.lower() in SINGLE_FILE_SUFFIXES
        or s.count("/") > 1
    )
    if _HUB_ID.match(s) and not looks_like_path:
        return "hub", s
    raise ModelNotFoundError(
        f"model {s!r}: no such file or folder, and not a hub id (owner/name). Built-in models: "
        f"{', '.join(plugins.names(plugins.MODELS))}"
    )


def _located(model) -> tuple[str, Path | str]:
    """:func:`resolve_model` with a built-in name resolved to its folder."""
    kind, loc = resolve_model(model)
    if kind == "builtin":
        return "folder", plugins.load(plugins.MODELS, str(loc))()
    return kind, loc


def check_model_available(model: str, *, option: str = "--model") -> str:
    """Before any work: ``model`` resolves, and a hub id is in the HF cache or may download.

    Returns the kind ('builtin', 'folder', 'file', 'hub'). Offline (``HF_HUB_OFFLINE``) a hub
    id that is not cached stops here with how to get it, not after the episodes were built.
    """
    try:
        kind, loc = resolve_model(model)
    except (ModelNotFoundError, ModelFormatError) as exc:
        raise type(exc)(f"{option} {exc}") from None
    if kind == "hub" and _hub_offline():
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(str(loc), "model_index.json"), str):
            raise ModelNotFoundError(
                f"{option} {loc}: the weights are not in the Hugging Face cache and "
                f"HF_HUB_OFFLINE=1 forbids downloading. Fetch them with `huggingface-cli "
                f"download {loc}` on a machine with network, or pass {option} with a local "
                "diffusers folder or a single .safetensors file (+ --config DIR)"
            )
    return kind


SAMPLER_DEFAULTS_FILE = "genie_sampler.json"


def recommended_sampler(folder: Path) -> dict:
    """Sampler settings a model folder recommends (``genie_sampler.json``; empty: reference).

    Why: a small model trained by this project (the embedded default) needs other settings than
    SD 1.5 to keep the source's context at GeNIe's r; real checkpoints carry no such file and get
    the reference.
    """
    import json

    f = Path(folder) / SAMPLER_DEFAULTS_FILE
    if not f.exists():
        return {}
    try:
        d = json.loads(f.read_text())
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"{f}: not valid JSON ({exc})") from None
    return {k: v for k, v in d.items() if not k.startswith("_")}


def load_generator(
    model: str | os.PathLike = "tiny-random",
    *,
    device=None,
    dtype=None,
    sampler=None,
    config: str | None = None,
    lora=(),
) -> DiffusionGenerator:
    """Load SD components from a built-in name, diffusers folder, single file or hub id.

    ``sampler`` is a :class:`SamplerConfig` (scheduler, steps, guidance, resolution; None: the
    reference settings with the folder's ``genie_sampler.json`` applied); ``config``
    is a local diffusers folder giving the architecture of a single-file checkpoint; ``lora``
    LoRAs (``SOURCE[:SCALE]`` strings or :class:`~.adapters.AdapterSpec`) fused in, in order.
    """
    from genie_plugin.diffusion.adapters import AdapterSpec, advice, fuse_adapters
    from genie_plugin.diffusion.families import family
    from genie_plugin.diffusion.schedulers import check_scheduler_name
    from genie_plugin.diffusion.settings import SamplerConfig

    device, dtype = _default_device_dtype(device, dtype)
    kind, loc = _located(model)
    rec = None
    if sampler is None:
        rec = recommended_sampler(Path(loc)) if kind == "folder" else {}
        sampler = SamplerConfig.from_dict(rec)
    check_scheduler_name(sampler.scheduler)
    if kind == "folder":
        try:
            fam_name, parts, sched_cfg, options = _from_components(str(loc), dtype, str(loc))
        except ModelFormatError:
            raise
        except (OSError, ValueError) as exc:
            raise ModelFormatError(f"{loc}: failed to load model folder ({exc})") from None
        fp = folder_fingerprint(Path(loc))
    elif kind == "file":
        fam_name, parts, sched_cfg, options, fp = _load_single_file(Path(loc), dtype, config)
    else:
        fam_name, parts, sched_cfg, options, fp = _load_hub(str(loc), dtype)
    fam = family(fam_name)
    for m in parts.values():
        if hasattr(m, "requires_grad_"):
            m.to(device)
            m.eval()
            m.requires_grad_(False)
    gen = DiffusionGenerator(
        name=str(model),
        fingerprint=fp,
        tokenizer=parts.get("tokenizer"),
        text_encoder=parts.get("text_encoder"),
        vae=parts["vae"],
        unet=parts[fam.network],
        scheduler_config=sched_cfg,
        device=device,
        dtype=dtype,
        sampler=sampler,
        family=fam_name,
        parts=parts,
        options=options,
    )
    specs = [s if isinstance(s, AdapterSpec) else AdapterSpec.parse(s) for s in lora]
    gen = fuse_adapters(gen, specs)
    if rec == {}:  # no genie_sampler.json and no sampler asked for: the adapter's or family's
        rule = advice(gen.adapters) or fam.recommended_sampler(gen)
        if rule:
            gen = gen.with_sampler(**rule)
    check_family_sampler(gen)
    return gen


def check_family_sampler(gen) -> None:
    """A scheduler the model's family can run (a flow model has no DDPM scheduler)."""
    from genie_plugin.errors import ConfigError

    fam = gen.adapter
    if gen.sampler.scheduler not in fam.schedulers:
        raise ConfigError(
            f"--scheduler {gen.sampler.scheduler}: model {gen.name!r} is {fam.title}, which runs "
            f"{', '.join(fam.schedulers)}"
        )


def load_configured(
    model: str | os.PathLike,
    *,
    device=None,
    config: str | None = None,
    settings: dict | None = None,
    backend: str = "torch",
    backend_options: dict | None = None,
    channels_last: bool = False,
    lazy: bool = False,
    lora=(),
) -> DiffusionGenerator:
    """The model as a run uses it: ``settings`` (SamplerConfig fields; None values are left to
    the model's recommendation, then the reference) over its recommended sampler, channels-last
    if asked, on ``backend``. The one place the CLI and the benchmark runner load through.

    ``lazy``: a model folder loaded before with the same request comes back as a
    :class:`~genie_plugin.diffusion.lazy.LazyGenerator` (weights loaded on the first image
    generated; a run served by the augmentation cache never loads them). ``lora``: LoRAs
    fused in (:func:`load_generator`); such a model is never served lazily."""
    from genie_plugin.diffusion.model import check_backend

    check_backend(backend)
    given = {k: v for k, v in (settings or {}).items() if v is not None}
    record = lazy and not backend_options and config is None and not lora
    request = _lazy_request(model, device, given, backend, channels_last) if record else None
    if request is not None:
        from genie_plugin.diffusion.lazy import LazyGenerator, read_facts

        facts = read_facts(request)
        if facts is not None:
            return LazyGenerator(
                facts,
                lambda: load_configured(
                    model, device=device, settings=settings, backend=backend,
                    channels_last=channels_last,
                ),
            )  # fmt: skip
    gen = load_generator(model, device=device, config=config, lora=lora)
    if given:
        gen = gen.with_sampler(**given)
    if channels_last:
        gen.use_channels_last()
    if backend != "torch":
        gen = gen.with_backend(backend, **(backend_options or {}))
    if record:  # after the load: an ONNX export made by it, and what auto chose, are known
        request = _lazy_request(model, device, given, gen.backend, channels_last)
        if request is not None:
            from genie_plugin.diffusion.lazy import write_facts

            write_facts(request, gen)
    return gen


def _folder_fingerprint(model) -> str | None:
    """The content fingerprint of a model folder (a built-in name or a local diffusers folder),
    without loading it; None for a single file, a hub id, or a model that does not resolve (its
    load then says what is wrong)."""
    try:
        kind, loc = _located(model)
        return folder_fingerprint(Path(loc)) if kind == "folder" else None
    except Exception:  # noqa: BLE001 - see above
        return None


def _lazy_request(model, device, settings: dict, backend: str, channels_last: bool):
    """What a lazily served model's facts are a function of, or None where they cannot be known
    without loading: a single file or hub id, a backend that compiles, an ONNX export not made
    yet."""
    from genie_plugin.diffusion.lazy import LAZY_BACKENDS

    if backend not in LAZY_BACKENDS:
        return None
    fp = _folder_fingerprint(model)
    if fp is None:
        return None
    device, dtype = _default_device_dtype(device, None)
    graph = None
    if backend == "onnx":
        import torch

        from genie_plugin.diffusion.onnx_backend import cached_graph_variant

        graph = cached_graph_variant(fp, dtype == torch.float16, device)
        if graph is None:
            return None
    return {
        "model": str(model),
        "fingerprint": fp,
        "settings": settings,
        "backend": backend,
        "graph": graph,
        "device": str(device),
        "dtype": str(dtype),
        "channels_last": channels_last,
    }


def cached_backend_choice(model: str, device, *, batch: int | None = None):
    """The cached choice for a model folder (a built-in name or a local diffusers folder),
    found without loading the model (its fingerprint is the folder's content hash, memoised);
    None when there is none yet or the model is a single file or a hub id (load it then)."""
    from genie_plugin.diffusion.auto import CALIBRATION_BATCH, candidates, choice_path, read_choice

    fp = _folder_fingerprint(model)
    if fp is None:
        return None
    device, dtype = _default_device_dtype(device, None)
    names, _ = candidates(device)
    return read_choice(choice_path(fp, dtype, device, names, batch or CALIBRATION_BATCH))
