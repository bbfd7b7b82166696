"""Load a Stable-Diffusion-architecture model from a hub id, a folder or a single file.

Only diffusers' own model and scheduler classes are used; the sampler loop lives in
:mod:`genie_plugin.diffusion.sampler`. Hub ids are served from the Hugging Face cache and honour
``HF_HUB_OFFLINE``; nothing here patches a diffusers class.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from genie_plugin.errors import ModelFormatError, ModelNotFoundError

#: Component folders a diffusers SD 1.x/2.x folder must have.
REQUIRED_COMPONENTS: tuple[str, ...] = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _builtin_models() -> dict[str, str]:
    return {
        "embedded": "small SD-architecture model trained on the shapes dataset (ships with the package)",
        "tiny-random": "seeded random tiny SD-architecture model (tests, plumbing)",
    }


BUILTIN_MODELS = _builtin_models()

#: UNet backends: the sampler loop is the same, only the UNet call differs.
BACKENDS: dict[str, str] = {
    "torch": "PyTorch eager",
    "cuda-graphs": "PyTorch, replayed from CUDA graphs captured per padded batch size (CUDA only)",
    "torch-compile": "PyTorch with the UNet compiled by torch.compile (inductor; dynamic batch)",
    "torch-compile-cuda-graphs": "torch-compile replayed from CUDA graphs per padded batch size",
    "onnx": "optimum ONNX export on onnxruntime (CUDA provider + IO binding, or CPU)",
    "onnx-cuda-graphs": "onnx with onnxruntime's CUDA graphs, one session per padded batch size",
}


def check_backend(name: str) -> str:
    if name not in BACKENDS:
        from genie_plugin.errors import UnknownNameError

        raise UnknownNameError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")
    return name


@dataclass(eq=False)
class DiffusionGenerator:
    """Loaded SD components plus the sampler settings used to run them.

    Runtime object (holds modules); describe it in manifests with ``fingerprint``/``describe``.
    """

    name: str
    fingerprint: str
    tokenizer: Any
    text_encoder: Any
    vae: Any
    unet: Any
    scheduler_config: Any
    device: Any
    dtype: Any
    sampler: Any = field(default=None)
    backend: str = "torch"  # see BACKENDS
    denoiser: Any = field(default=None, repr=False)
    stats: dict = field(default_factory=dict, repr=False)  # e.g. vae_fp32_reruns
    vae_fp32: Any = field(default=None, repr=False)  # made on the first fp16 overflow

    def __post_init__(self) -> None:
        if self.sampler is None:
            from genie_plugin.diffusion.sampler import SamplerConfig

            self.sampler = SamplerConfig()

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def native_resolution(self) -> int:
        return int(self.unet.config.sample_size) * self.vae_scale_factor

    @property
    def resolution(self) -> int:
        return int(self.sampler.resolution or self.native_resolution)

    def with_sampler(self, **changes: Any) -> DiffusionGenerator:
        """A view of the same modules with other sampler settings (no reload)."""
        return replace(self, sampler=replace(self.sampler, **changes))

    def describe(self) -> dict:
        d = {"model": self.name, "fingerprint": self.fingerprint, **self.sampler.to_dict()}
        if self.backend != "torch":
            d["backend"] = self.backend
        return d

    def with_backend(self, backend: str, **options: Any) -> DiffusionGenerator:
        """The same model with its UNet call on another backend (see :data:`BACKENDS`)."""
        check_backend(backend)
        if backend == "torch":
            return replace(self, backend="torch", denoiser=None)
        if backend == "cuda-graphs":
            from genie_plugin.diffusion.cuda_graphs import PaddedDenoiser

            return replace(self, backend=backend, denoiser=PaddedDenoiser(self.unet))
        if backend.startswith("torch-compile"):
            from genie_plugin.diffusion.compiled import compiled_denoiser

            graphs = backend == "torch-compile-cuda-graphs"
            return replace(
                self, backend=backend, denoiser=compiled_denoiser(self.unet, cuda_graphs=graphs)
            )
        from genie_plugin.diffusion.onnx_backend import onnx_denoiser

        graphs = backend == "onnx-cuda-graphs"
        return replace(
            self, backend=backend, denoiser=onnx_denoiser(self, cuda_graphs=graphs, **options)
        )

    def use_channels_last(self) -> DiffusionGenerator:
        """Convert UNet and VAE to channels-last in place (NHWC convolutions on tensor cores).

        Why in place: every view of this generator shares the modules. Outputs agree with
        NCHW to rounding; worth it on GPUs, neutral to slower on CPUs.
        """
        import torch

        for m in (self.unet, self.vae):
            m.to(memory_format=torch.channels_last)
        self.stats["channels_last"] = True
        return self

    def generate(self, items, *, max_batch: int = 16, progress=None, denoiser=None):
        from genie_plugin.diffusion.sampler import sample

        return sample(self, items, max_batch=max_batch, progress=progress, denoiser=denoiser)


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


def _from_components(folder_or_id: str, dtype, **kw):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    unet = UNet2DConditionModel.from_pretrained(
        folder_or_id, subfolder="unet", torch_dtype=dtype, **kw
    )
    vae = AutoencoderKL.from_pretrained(folder_or_id, subfolder="vae", torch_dtype=dtype, **kw)
    te = CLIPTextModel.from_pretrained(folder_or_id, subfolder="text_encoder", dtype=dtype, **kw)
    tok = CLIPTokenizer.from_pretrained(folder_or_id, subfolder="tokenizer", **kw)
    from diffusers import DPMSolverMultistepScheduler

    sched_cfg = DPMSolverMultistepScheduler.load_config(folder_or_id, subfolder="scheduler", **kw)
    return tok, te, vae, unet, sched_cfg


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _load_hub(repo_id: str, dtype):
    from huggingface_hub import try_to_load_from_cache

    offline = _hub_offline()
    try:
        parts = _from_components(repo_id, dtype, local_files_only=offline)
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
    cached = try_to_load_from_cache(repo_id, "model_index.json")
    if isinstance(cached, str):  # the snapshot folder the components were read from
        return (*parts, folder_fingerprint(Path(cached).parent))
    return (*parts, f"hub:{repo_id}@unknown")


def _load_single_file(path: Path, dtype, config: str | None):
    from diffusers import StableDiffusionPipeline

    kw: dict[str, Any] = {"torch_dtype": dtype}
    if config is not None:
        kw["config"] = config
    if _hub_offline():
        kw["local_files_only"] = True
    try:
        pipe = StableDiffusionPipeline.from_single_file(str(path), **kw)
    except Exception as exc:  # diffusers raises many types here
        raise ModelFormatError(
            f"{path}: could not load as a single-file SD 1.x/2.x checkpoint ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}). Its architecture config comes from "
            "the HF cache; offline, pass --config with a local diffusers folder of the same "
            "architecture (e.g. stable-diffusion-v1-5)"
        ) from None
    return (
        pipe.tokenizer,
        pipe.text_encoder,
        pipe.vae,
        pipe.unet,
        pipe.scheduler.config,
        single_file_fingerprint(path, config),
    )


def resolve_model(model: str | os.PathLike) -> tuple[str, Path | str]:
    """Classify ``model`` as ('builtin'|'folder'|'file'|'hub', location), or raise."""
    s = str(model)
    if s in BUILTIN_MODELS:
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
        f"{', '.join(sorted(BUILTIN_MODELS))}"
    )


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
) -> DiffusionGenerator:
    """Load SD components from a built-in name, diffusers folder, single file or hub id.

    ``sampler`` is a :class:`SamplerConfig` (scheduler, steps, guidance, resolution; None: the
    reference settings with the folder's ``genie_sampler.json`` applied); ``config``
    is a local diffusers folder giving the architecture of a single-file checkpoint.
    """
    from genie_plugin.diffusion.sampler import SamplerConfig
    from genie_plugin.diffusion.schedulers import check_scheduler_name

    device, dtype = _default_device_dtype(device, dtype)
    kind, loc = resolve_model(model)
    if kind == "builtin" and loc == "embedded":
        from genie_plugin.embedded.assets import model_dir

        kind, loc = "folder", model_dir()
    elif kind == "builtin":
        from genie_plugin.diffusion.tiny import tiny_model_dir

        kind, loc = "folder", tiny_model_dir()
    if sampler is None:
        rec = recommended_sampler(Path(loc)) if kind == "folder" else {}
        sampler = SamplerConfig.from_dict(rec)
    check_scheduler_name(sampler.scheduler)
    if kind == "folder":
        check_model_folder(Path(loc))
        try:
            tok, te, vae, unet, sched_cfg = _from_components(str(loc), dtype)
        except (OSError, ValueError) as exc:
            raise ModelFormatError(f"{loc}: failed to load model folder ({exc})") from None
        fp = folder_fingerprint(Path(loc))
    elif kind == "file":
        tok, te, vae, unet, sched_cfg, fp = _load_single_file(Path(loc), dtype, config)
    else:
        tok, te, vae, unet, sched_cfg, fp = _load_hub(str(loc), dtype)
    for m in (te, vae, unet):
        m.to(device)
        m.eval()
        m.requires_grad_(False)
    return DiffusionGenerator(
        name=str(model),
        fingerprint=fp,
        tokenizer=tok,
        text_encoder=te,
        vae=vae,
        unet=unet,
        scheduler_config=sched_cfg,
        device=device,
        dtype=dtype,
        sampler=sampler,
    )
