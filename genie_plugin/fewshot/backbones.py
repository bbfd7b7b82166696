"""Frozen timm backbones as embedding functions (GeNIe-Ada scoring, few-shot features).

Spec strings: a named backbone (``embedded``, the shipped shapes backbone, or a plugin's from the
entry-point group ``genie_plugin.backbones``), ``NAME`` (timm pretrained weights from the HF cache), ``NAME:PATH`` (timm
architecture + a local state dict) or ``NAME:random`` (seeded random init: plumbing/tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from genie_plugin import plugins
from genie_plugin.errors import ConfigError, ModelNotFoundError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def images_to_tensor(
    images: Sequence[Image.Image],
    size: int,
    *,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    interpolation: str = "bicubic",
):
    """PIL images -> normalised N×3×size×size: center square crop, resize (``interpolation``).

    Done in torch (not PIL) so it matches the embedded classifiers' training transform exactly.
    """
    import torch
    import torch.nn.functional as F

    crops = []
    for im in images:
        im = im.convert("RGB")
        w, h = im.size
        s = min(w, h)
        im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
        crops.append(np.asarray(im, dtype=np.float32))
    out: list = [None] * len(crops)
    # one resize call per input size (the common case: all equal); per-image results are the
    # same as resizing one by one
    by_size: dict[int, list[int]] = {}
    for i, a in enumerate(crops):
        by_size.setdefault(a.shape[0], []).append(i)
    for s, idx in by_size.items():
        x = torch.from_numpy(np.stack([crops[i] for i in idx]) / 255.0).permute(0, 3, 1, 2)
        if s != size:
            x = F.interpolate(
                x, size=(size, size), mode=interpolation, align_corners=False, antialias=s > size
            )
        for j, i in enumerate(idx):
            out[i] = x[j : j + 1].clamp(0, 1)
    x = torch.cat(out)
    m = torch.tensor(tuple(mean)).view(1, 3, 1, 1)
    sd = torch.tensor(tuple(std)).view(1, 3, 1, 1)
    return (x - m) / sd


class Embedder:
    """Callable: list of PIL images -> (n, d) float32 L2-normalised features."""

    def __init__(
        self,
        model,
        *,
        image_size: int = 224,
        device=None,
        batch_size: int = 64,
        name: str = "",
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        interpolation: str = "bicubic",
    ) -> None:
        import torch

        if interpolation not in ("bicubic", "bilinear", "nearest"):
            raise ConfigError(
                f"backbone interpolation {interpolation!r}: use bicubic, bilinear or nearest"
            )
        self.mean, self.std, self.interpolation = tuple(mean), tuple(std), interpolation

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        # channels-last: about 20% faster convolutions on CPU (oneDNN) and on tensor cores
        self.model = (
            model.to(self.device).eval().requires_grad_(False).to(memory_format=torch.channels_last)
        )
        self.image_size = image_size
        self.batch_size = batch_size
        self.name = name

    def _tensor(self, images: Sequence[Image.Image]):
        return images_to_tensor(
            images, self.image_size, mean=self.mean, std=self.std, interpolation=self.interpolation
        )

    def preprocessing(self) -> str:
        """What the inputs go through beyond the size ('' for the ImageNet/bicubic default)."""
        if (self.mean, self.std, self.interpolation) == (IMAGENET_MEAN, IMAGENET_STD, "bicubic"):
            return ""
        return f"{self.interpolation}|{self.mean}|{self.std}"

    def __call__(self, images: Sequence[Image.Image]) -> np.ndarray:
        import torch

        out = []
        with torch.no_grad():
            for i in range(0, len(images), self.batch_size):
                x = self._tensor(images[i : i + self.batch_size]).to(self.device)
                f = self.model(x).float()
                out.append(torch.nn.functional.normalize(f.flatten(1), dim=1).cpu().numpy())
        if not out:
            return np.zeros((0, 0), np.float32)
        return np.concatenate(out)


PREPROCESS_VERSION = "1"  # bump when images_to_tensor changes


def _read_sealed_npy(path: Path) -> np.ndarray | None:
    """A feature-memo entry, or None: absent, or not whole (its sealed hash is checked before
    anything is parsed, so zeros a power cut left past a valid header are never features)."""
    import io

    from genie_plugin.io import unseal

    try:
        with open(path, "rb") as fh:
            payload = unseal(fh.read())
    except OSError:
        return None
    if payload is None:
        return None
    try:
        return np.load(io.BytesIO(payload), allow_pickle=False)
    except (OSError, ValueError):
        return None


class MemoEmbedder:
    """An embedder that remembers the features of whole calls (a list of images, in order).

    Every strategy of a scenario embeds the same query views and, with the same view seed, the
    same weak views of the real support images; remembering them makes a run several times
    cheaper. The memo is per call, not per image: a hit returns exactly what the same batch
    computed, so a row does not depend on which other strategies ran (CPU kernels are not
    batch-invariant at the last bit). With ``store`` the features also persist on disk, keyed
    by the backbone's weights, preprocessing and device type, so a rerun over a warm cache
    embeds nothing it has seen.
    """

    def __init__(self, embed, store: Path | None = None, max_calls: int = 20_000) -> None:
        self.embed = embed
        self.name = getattr(embed, "name", "")
        self.memo: dict[bytes, np.ndarray] = {}
        self.max_calls = max_calls
        self.store = Path(store) if store is not None else None
        self._fp: bytes | None = None

    def _fingerprint(self) -> bytes:
        if self._fp is None:
            import hashlib

            h = hashlib.blake2b(digest_size=16)
            e = self.embed
            h.update(f"{PREPROCESS_VERSION}|{getattr(e, 'image_size', '')}|".encode())
            if getattr(e, "preprocessing", None) is not None and e.preprocessing():
                h.update(f"{e.preprocessing()}|".encode())
            h.update(str(getattr(getattr(e, "device", None), "type", "")).encode())
            model = getattr(e, "model", None)
            if model is None:
                h.update(repr(e).encode())
            else:
                for k, v in sorted(model.state_dict().items()):
                    h.update(k.encode())
                    h.update(v.detach().cpu().contiguous().numpy().tobytes())
            self._fp = h.digest()
        return self._fp

    def _key(self, images: Sequence[Image.Image]) -> bytes:
        import hashlib

        h = hashlib.blake2b(digest_size=20)
        for im in images:
            h.update(f"{im.mode}{im.size}|".encode())
            h.update(im.tobytes())
        return h.digest()

    def _path(self, key: bytes) -> Path:
        import hashlib

        hexkey = hashlib.blake2b(self._fingerprint() + key, digest_size=16).hexdigest()
        return self.store / hexkey[:2] / f"{hexkey}.npy"

    def __call__(self, images: Sequence[Image.Image]) -> np.ndarray:
        key = self._key(images)
        if key in self.memo:
            return self.memo[key]
        feats = None
        if self.store is not None:
            feats = _read_sealed_npy(self._path(key))
        if feats is None:
            feats = self.embed(list(images))
            if self.store is not None:
                import io

                from genie_plugin.io import atomic_write_bytes, seal

                buf = io.BytesIO()
                np.save(buf, feats, allow_pickle=False)
                # sealed with its sha256, every read checked: no fsync needed (one per call,
                # ~1,500 in a cold main job), a file a power cut zeroes is recomputed
                atomic_write_bytes(self._path(key), seal(buf.getvalue()), durable=False)
        if len(self.memo) >= self.max_calls:
            self.memo.clear()
        self.memo[key] = feats
        return feats


ENCODER_PREFIXES = (
    "",
    "module.",
    "encoder.",
    "module.encoder.",
    "backbone.",
    "module.backbone.",
    "model.",
    "student.",
    "module.model.",
)


def read_state_dict(path: Path) -> dict:
    """Tensors from a ``.safetensors``/``.pt``/``.pth`` file; ``{"state_dict": ...}`` unwrapped."""
    import pickle

    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ConfigError(
            f"backbone weights {path}: holds non-tensor objects ({str(exc).splitlines()[0][:120]}); "
            "save only its state dict: torch.save(torch.load(P, weights_only=False)['state_dict'], "
            "'weights.pt')"
        ) from None
    for key in ("state_dict", "model", "encoder_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    return state


def match_state_dict(state: dict, model_state: dict) -> dict:
    """Keep the encoder of a self-supervised checkpoint (UniSiam: ``encoder.*`` next to its
    projector/predictor; DataParallel: ``module.*``) under the model's own key names; tensors
    of another shape are dropped, so they surface as missing keys with the architecture named."""

    def fits(pre, k, v):
        name = k[len(pre) :]
        return k.startswith(pre) and name in model_state and model_state[name].shape == v.shape

    best = max(ENCODER_PREFIXES, key=lambda pre: sum(fits(pre, k, v) for k, v in state.items()))
    return {k[len(best) :]: v for k, v in state.items() if fits(best, k, v)}


def check_backbone_spec(spec: str, *, option: str = "--backbone") -> None:
    """Before any work: the spec names a timm architecture and its weights file exists."""
    if plugins.has(plugins.BACKBONES, spec):
        return
    import timm

    name, _, weights = spec.partition(":")
    if not name or name not in timm.list_models():
        raise ConfigError(
            f"{option} {spec}: {name!r} is not a timm architecture (see timm.list_models()); "
            "use embedded, NAME, NAME:PATH or NAME:random"
        )
    if weights and weights != "random" and not Path(weights).expanduser().is_file():
        raise ModelNotFoundError(
            f"{option} {spec}: weights file {Path(weights).expanduser()} not found; pass "
            f"{option} {name}:PATH with your checkpoint (e.g. UniSiam's, pretrained on the "
            "dataset's base split)"
        )


def load_backbone(spec: str, *, image_size: int = 224, device=None, seed: int = 0) -> Embedder:
    """Build an :class:`Embedder` from a backbone spec string (see module docstring)."""
    import timm
    import torch

    if plugins.has(plugins.BACKBONES, spec):  # a named backbone (embedded, a plugin's)
        return plugins.load(plugins.BACKBONES, spec)(device=device)
    name, _, weights = spec.partition(":")
    if not name or name not in timm.list_models():
        raise ConfigError(
            f"unknown backbone {name!r}: not a timm architecture (see timm.list_models())"
        )
    if weights == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = timm.create_model(name, pretrained=False, num_classes=0)
    elif weights:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ModelNotFoundError(f"backbone weights {path}: file not found")
        with torch.random.fork_rng(devices=[]):
            model = timm.create_model(name, pretrained=False, num_classes=0)
        state = read_state_dict(path)
        state = match_state_dict(state, model.state_dict())
        missing, _ = model.load_state_dict(state, strict=False)
        if missing:
            raise ConfigError(f"backbone weights {path}: missing keys for {name}: {missing[:5]}")
    else:
        try:
            with torch.random.fork_rng(devices=[]):
                model = timm.create_model(name, pretrained=True, num_classes=0)
        except Exception as exc:
            raise ModelNotFoundError(
                f"backbone {name!r}: pretrained weights not available ({type(exc).__name__}); "
                f"they come from the HF cache. Use {name}:PATH for a local state dict or "
                f"{name}:random for a random init"
            ) from None
    # the architecture's own normalisation and resize filter (timm's pretrained config)
    data = timm.data.resolve_model_data_config(model)
    interpolation = data.get("interpolation", "bicubic")
    return Embedder(
        model,
        image_size=image_size,
        device=device,
        name=spec,
        mean=data.get("mean", IMAGENET_MEAN),
        std=data.get("std", IMAGENET_STD),
        interpolation=interpolation if interpolation in ("bicubic", "bilinear") else "bicubic",
    )
