"""Judges of generated images for the ImageNet-derived datasets (``genie bench report``).

Any timm ImageNet-1k classifier; its 1000 outputs are named with the words the datasets use
for their classes (the first WordNet lemma, :func:`genie_plugin.data.names.wordnet_lemma`), so
a generated image's top class compares with its label by name. The default is not the
benchmark's backbone (a ResNet-12/18 trained on the base classes) and saw ImageNet-1k's full
training set: it judges, it is not judged.
"""

from __future__ import annotations

import numpy as np

from genie_plugin.errors import ModelNotFoundError

DEFAULT_ORACLE = "convnext_base.fb_in22k_ft_in1k"


class ImageNetOracle:
    """An ImageNet-1k timm classifier as the judge of label consistency."""

    def __init__(self, device=None, model: str = DEFAULT_ORACLE, pretrained: bool = True) -> None:
        import timm
        import torch
        from timm.data import ImageNetInfo

        from genie_plugin.data.names import wordnet_lemma

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        try:
            with torch.random.fork_rng(devices=[]):
                net = timm.create_model(model, pretrained=pretrained)
        except Exception as exc:
            raise ModelNotFoundError(
                f"oracle {model!r}: ImageNet-1k weights not available ({type(exc).__name__}); "
                "they come from the HF cache: fetch them on a machine with network, or pass "
                "--oracle none"
            ) from None
        if net.num_classes != 1000:
            raise ModelNotFoundError(
                f"oracle {model!r}: {net.num_classes} classes, not ImageNet-1k"
            )
        self.model = net.eval().to(self.device)
        cfg = timm.data.resolve_model_data_config(net)
        self.transform = timm.data.create_transform(**cfg, is_training=False)
        self.classes = tuple(wordnet_lemma(w) for w in ImageNetInfo().label_names())
        self.info = {"arch": model, "pretrained": pretrained, "input": cfg["input_size"][-1]}
        self._torch = torch

    def probs(self, images) -> np.ndarray:
        """P(class) over ImageNet-1k's 1000 classes, one row per image."""
        out = []
        with self._torch.no_grad():
            for i in range(0, len(images), 64):
                x = self._torch.stack(
                    [self.transform(im.convert("RGB")) for im in images[i : i + 64]]
                )
                logits = self.model(x.to(self.device)).float()
                out.append(self._torch.softmax(logits, 1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)))
