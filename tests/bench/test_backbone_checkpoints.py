"""Backbone checkpoints: plain timm/torch state dicts and UniSiam-style ``encoder.*`` ones."""

import numpy as np
import pytest
import torch
from PIL import Image

from genie_plugin.errors import ConfigError
from genie_plugin.fewshot.backbones import load_backbone


@pytest.fixture(scope="module")
def reference():
    import timm

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        m = timm.create_model("resnet18", pretrained=False, num_classes=0)
    return m.state_dict()


def _images():
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)) for _ in range(3)]


@pytest.mark.parametrize("layout", ["plain", "unisiam", "dataparallel"])
def test_checkpoint_layouts_give_the_same_features(reference, tmp_path, layout):
    if layout == "plain":
        state = dict(reference)
    elif layout == "unisiam":  # encoder + projector/predictor heads, wrapped in state_dict
        state = {
            "state_dict": {
                **{f"encoder.{k}": v for k, v in reference.items()},
                "proj.0.weight": torch.zeros(8, 512),
                "pred.0.weight": torch.zeros(8, 8),
            },
            "epoch": 400,
        }
    else:
        state = {f"module.{k}": v for k, v in reference.items()}
    path = tmp_path / f"{layout}.pth"
    torch.save(state, path)
    base = tmp_path / "ref.pth"
    torch.save(reference, base)
    f_ref = load_backbone(f"resnet18:{base}", image_size=32)(_images())
    f = load_backbone(f"resnet18:{path}", image_size=32)(_images())
    assert np.allclose(f, f_ref, atol=1e-6)
    assert np.allclose(np.linalg.norm(f, axis=1), 1, atol=1e-5)


def test_wrong_architecture_names_missing_keys(reference, tmp_path):
    path = tmp_path / "r18.pth"
    torch.save(reference, path)
    with pytest.raises(ConfigError, match="missing keys for resnet50"):
        load_backbone(f"resnet50:{path}")


def test_timm_backbones_take_their_own_normalisation():
    """timm's data config decides mean/std (a ViT with 0.5/0.5 is not fed ImageNet-normalised
    pixels); the embedded backbone keeps the ImageNet normalisation it was trained with."""
    from genie_plugin.fewshot.backbones import IMAGENET_MEAN, images_to_tensor

    vit = load_backbone("vit_tiny_patch16_224:random", image_size=32, device="cpu")
    assert vit.mean == vit.std == (0.5, 0.5, 0.5)
    assert vit.preprocessing() != ""
    x = vit._tensor(_images())
    raw = images_to_tensor(_images(), 32, mean=(0, 0, 0), std=(1, 1, 1))
    assert torch.allclose(x, (raw - 0.5) / 0.5, atol=1e-6)
    emb = load_backbone("embedded", device="cpu")
    assert emb.mean == IMAGENET_MEAN and emb.preprocessing() == ""
