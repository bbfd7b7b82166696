"""Paths and loaders for the shipped embedded weights (model, backbone, oracle)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from genie_plugin.errors import ModelNotFoundError

if TYPE_CHECKING:  # numpy is imported where it is used: loading the paths stays light
    import numpy as np

EMBEDDED_NAME = "embedded"


def weights_dir() -> Path:
    return Path(str(resources.files("genie_plugin") / "embedded" / "weights"))


def model_dir() -> Path:
    """Small SD-architecture model trained on the shapes dataset (ships with the package).

    Returns the diffusers folder of the shipped weights."""
    d = weights_dir() / "model"
    if not (d / "model_index.json").is_file():
        raise ModelNotFoundError(
            f"embedded model not found at {d}; it ships with the package (git checkout) or is "
            "rebuilt by `python -m genie_plugin.embedded.train`"
        )
    return d


def load_classifier(kind: str, *, device=None):
    """The shipped timm classifier ``kind`` ('backbone' or 'oracle') and its input size."""
    import timm
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = weights_dir() / f"{kind}.safetensors"
    if not path.is_file():
        raise ModelNotFoundError(f"embedded {kind} weights not found at {path}")
    with safe_open(str(path), "pt") as fh:
        meta = fh.metadata()
    with torch.random.fork_rng(
        devices=[]
    ):  # init weights are overwritten; keep global RNG untouched
        model = timm.create_model(
            meta["arch"], pretrained=False, num_classes=int(meta["num_classes"])
        )
    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()}
    model.load_state_dict(state)
    model.eval().requires_grad_(False)
    if device is not None:
        model.to(torch.device(device))
    return model, int(meta["image_size"])


def classifier_info(kind: str) -> dict:
    """Provenance of a shipped classifier: content hash and its training metadata."""
    import hashlib

    from safetensors import safe_open

    path = weights_dir() / f"{kind}.safetensors"
    with safe_open(str(path), "pt") as fh:
        meta = dict(fh.metadata() or {})
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return {"sha256": digest, **meta}


def _shipped_backbone(kind: str, name: str, device):
    from genie_plugin.fewshot.backbones import Embedder

    model, size = load_classifier(kind)
    model.reset_classifier(0)
    return Embedder(model, image_size=size, device=device, name=name)


def load_embedded_backbone(*, device=None):
    """The shipped shapes backbone (a timm network trained on the base classes), head removed."""
    return _shipped_backbone("backbone", EMBEDDED_NAME, device)


def load_context_backbone(*, device=None):
    """``embedded-ctx``: the backbone of the class–context experiment (trained on ``shapes-ctx``
    base classes without colour scrambling; see docs/ordering.md). Never the default."""
    return _shipped_backbone("backbone_ctx", "embedded-ctx", device)


class Oracle:
    """Judges generated images: P(class) over all 32 embedded classes (paper's oracle table)."""

    def __init__(self, device=None) -> None:
        import torch

        self.model, self.size = load_classifier("oracle", device=device)
        self.device = next(self.model.parameters()).device
        self._torch = torch
        self.info = classifier_info("oracle")
        from genie_plugin.embedded import shapes

        self.classes = tuple(shapes.CLASSES)  # the columns of probs()

    def probs(self, images) -> np.ndarray:
        import numpy as np

        from genie_plugin.fewshot.backbones import images_to_tensor

        out = []
        with self._torch.no_grad():
            for i in range(0, len(images), 256):
                x = images_to_tensor(images[i : i + 256], self.size).to(self.device)
                out.append(self._torch.softmax(self.model(x).float(), 1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0))
