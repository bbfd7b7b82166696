"""Stand-in dataset files in exactly the real formats (tiny, random pixels, seeded).

- miniImageNet: learn2learn's ``mini-imagenet-cache-<split>.pkl`` ({"image_data": N×84×84×3
  uint8, "class_dict": {wnid: [indices]}}), with the real test-split WordNet ids;
- tieredImageNet: ``tiered-imagenet/<split>_images_png.pkl`` (a list of PNG byte arrays) and
  ``<split>_labels.pkl`` whose ``label_specific_str`` are synset ids, as in the released files;
- CUB: ``cubirds200/CUB_200_2011/images/<NNN.Species_name>/*.jpg`` for learn2learn's split;
- ImageNet: ``train/<wnid>/<wnid>_<n>.JPEG`` (ILSVRC2012 layout).
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

# miniImageNet's 20 test classes (Ravi & Larochelle split)
MINI_TEST_WNIDS = [
    "n01930112", "n01981276", "n02099601", "n02110063", "n02110341", "n02116738", "n02129165",
    "n02219486", "n02443484", "n02871525", "n03127925", "n03146219", "n03272010", "n03544143",
    "n03775546", "n04146614", "n04149813", "n04418357", "n04522168", "n07613480",
]  # fmt: skip
# eight tieredImageNet test classes (its test.csv), enough for 5-way episodes
TIERED_TEST_WNIDS = [
    "n03314780", "n07565083", "n07579787", "n07590611", "n07697313", "n07697537", "n07711569",
    "n07714571",
]  # fmt: skip


def _pixels(rng, n: int, h: int, w: int) -> np.ndarray:
    return rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def write_mini(root: Path, per_class: int, split: str = "test", seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    x = _pixels(rng, per_class * len(MINI_TEST_WNIDS), 84, 84)
    class_dict = {
        w: list(range(k * per_class, (k + 1) * per_class)) for k, w in enumerate(MINI_TEST_WNIDS)
    }
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"mini-imagenet-cache-{split}.pkl", "wb") as fh:
        pickle.dump({"image_data": x, "class_dict": class_dict}, fh)
    return root


def write_tiered(root: Path, per_class: int, split: str = "test", seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    d = root / "tiered-imagenet"
    d.mkdir(parents=True, exist_ok=True)
    n = per_class * len(TIERED_TEST_WNIDS)
    pngs = []
    for a in _pixels(rng, n, 84, 84):
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="PNG")
        pngs.append(np.frombuffer(buf.getvalue(), dtype=np.uint8))
    labels = np.repeat(np.arange(len(TIERED_TEST_WNIDS)), per_class)
    short = "val" if split == "validation" else split
    with open(d / f"{short}_images_png.pkl", "wb") as fh:
        pickle.dump(pngs, fh)
    with open(d / f"{short}_labels.pkl", "wb") as fh:
        pickle.dump(
            {
                "label_specific": labels,
                "label_general": np.zeros(n, dtype=int),
                "label_specific_str": list(TIERED_TEST_WNIDS),
                "label_general_str": ["n00020090"],
            },
            fh,
        )
    return root


def write_cub(root: Path, per_class: int, split: str = "test", seed: int = 2, size: int = 64):
    from learn2learn.vision.datasets.cu_birds200 import SPLITS

    rng = np.random.default_rng(seed)
    base = root / "cubirds200" / "CUB_200_2011" / "images"
    for c in SPLITS[split]:
        d = base / c
        d.mkdir(parents=True, exist_ok=True)
        for k, a in enumerate(_pixels(rng, per_class, size, size + 16)):
            Image.fromarray(a).save(d / f"{c.split('.', 1)[1]}_{k:04d}.jpg", quality=90)
    return root


def write_imagenet(root: Path, counts: dict[str, int], seed: int = 3, size: int = 48) -> Path:
    """``root/train/<wnid>/<wnid>_<n>.JPEG`` with ImageNet's sparse file numbers, ``counts[wnid]``
    files per class (64 distinct JPEGs hard-linked in turn: the folder is big, its bytes are not)."""
    import os

    rng = np.random.default_rng(seed)
    blobs = root / ".blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    for k, a in enumerate(_pixels(rng, 64, size, size + 16)):
        if not (blobs / f"{k}.JPEG").exists():  # never rewrite a file others link to
            Image.fromarray(a).save(blobs / f"{k}.JPEG", format="JPEG", quality=85)
    for k, (w, n) in enumerate(sorted(counts.items())):
        d = root / "train" / w
        d.mkdir(parents=True, exist_ok=True)
        numbers = np.sort(rng.choice(20 * n + 100, n, replace=False) + 1)
        for j, num in enumerate(numbers):
            dst = d / f"{w}_{num}.JPEG"
            if not dst.exists():
                os.link(blobs / f"{(j + k) % 64}.JPEG", dst)  # one inode, many names: cheap
    return root


def write_imagenet_for(root: Path, dataset: str, split: str = "test", per_class: int = 21) -> Path:
    """An ImageNet train folder holding exactly what ``dataset``'s split reads: for
    miniImageNet every class up to its split's last position, for tieredImageNet
    ``per_class`` images of each class."""
    from genie_plugin.data.specs import full_classes, mini_positions

    wnids = full_classes(dataset, split)
    if dataset.startswith("mini"):
        return write_imagenet(root, {w: mini_positions(w)[-1] for w in wnids})
    return write_imagenet(root, dict.fromkeys(wnids, per_class))


# a few CIFAR-100 classes per split (any disjoint sets: the loaders read what is there)
CIFARFS_CLASSES = {
    "train": ["apple", "aquarium_fish", "baby", "bear", "beaver", "bed"],
    "val": ["bee", "beetle", "bicycle", "bottle", "bowl"],
    "test": ["boy", "bridge", "bus", "butterfly", "camel", "sweet_pepper"],
}


def write_cifarfs(root: Path, per_class: int, seed: int = 3) -> Path:
    """learn2learn's processed CIFAR-FS: ``cifarfs/processed/<split>/<class>/*.png``, 32 px."""
    rng = np.random.default_rng(seed)
    (root / "cifarfs" / "cifar100").mkdir(parents=True, exist_ok=True)  # the raw folder
    for split, classes in CIFARFS_CLASSES.items():
        for c in classes:
            d = root / "cifarfs" / "processed" / split / c
            d.mkdir(parents=True, exist_ok=True)
            for k, a in enumerate(_pixels(rng, per_class, 32, 32)):
                Image.fromarray(a).save(d / f"{c}_s_{k:06d}.png")
    return root


# FC100 classes are CIFAR-100 fine ids (superclass-disjoint splits in the released files)
FC100_IDS = {
    "train": [0, 9, 10, 16, 28, 61],
    "val": [4, 30, 55, 72, 95],
    "test": [1, 32, 67, 73, 91, 47],
}


def write_fc100(root: Path, per_class: int, seed: int = 4) -> Path:
    """learn2learn's ``FC100_<split>.pickle``: {"data": N×32×32×3 uint8, "labels": fine ids}."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, ids in FC100_IDS.items():
        x = _pixels(rng, per_class * len(ids), 32, 32)
        labels = [i for i in ids for _ in range(per_class)]
        with open(root / f"FC100_{split}.pickle", "wb") as fh:
            pickle.dump({"data": x, "labels": labels}, fh, protocol=2)
    return root
