"""The shapes dataset as a torch Dataset (cached arrays), as plain PNG files, and as a learn2learn
``MetaDataset``; ``load_shapes_split`` is the ``shapes`` entry of the dataset group
(``genie_plugin.datasets``) that :func:`genie_plugin.data.datasets.load_split` reads."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from genie_plugin.embedded import shapes
from genie_plugin.errors import ConfigError
from genie_plugin.io import atomic_write_bytes, save_png
from genie_plugin.paths import cache_root

DEFAULT_PER_CLASS = 120
#: The ``shapes-ctx`` variant's class–context correlation: the share of a class's images on
#: its class's typical background hue (:func:`genie_plugin.embedded.shapes.correlate_context`).
CONTEXT_RHO = 0.8


#: learn2learn's split names for the shapes splits (both are accepted everywhere).
L2L_SPLIT_NAMES = {"train": "base", "validation": "val", "test": "novel"}


def shapes_split(split: str) -> str:
    """base/val/novel, also given as learn2learn's train/validation/test."""
    return L2L_SPLIT_NAMES.get(split, split)


def _cache_file(split: str, per_class: int, seed: int, pool: str, rho: float = 0.0) -> Path:
    ctx = f"-ctx{rho:g}" if rho > 0 else ""
    return cache_root() / "datasets" / f"shapes-v1{ctx}-{pool}-{split}-{per_class}-seed{seed}.npz"


def load_arrays(
    split: str,
    *,
    per_class: int = DEFAULT_PER_CLASS,
    seed: int = 0,
    pool: str = "fewshot",
    context_rho: float = 0.0,
):
    """Images (N×32×32×3 uint8), labels (indices into ``split``'s class list) and class names.

    Generated deterministically on first use and cached (atomic write) under the cache root.
    ``context_rho`` > 0: the class–context correlated variant.
    """
    if split not in shapes.SPLITS:
        raise ConfigError(f"unknown shapes split {split!r}; choose one of {sorted(shapes.SPLITS)}")
    names = shapes.SPLITS[split]
    path = _cache_file(split, per_class, seed, pool, context_rho)
    if path.exists():
        cached = _read_arrays(path, len(names))
        if cached is not None:
            return (*cached, names)
        # torn or damaged (a power cut, a full disk, an edit): a cache, so made again below
    x, y_global = shapes.generate(
        per_class, seed=seed, pool=pool, classes=names, context_rho=context_rho
    )
    remap = {shapes.CLASSES.index(n): i for i, n in enumerate(names)}
    y = np.array([remap[c] for c in y_global], dtype=np.int64)
    buf = io.BytesIO()
    np.savez_compressed(buf, x=x, y=y)
    atomic_write_bytes(path, buf.getvalue())
    return x, y, names


def _read_arrays(path, n_classes: int):
    """(x, y) of a cached split, or None when the file is not a whole one (no pickles)."""
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as z:
            x, y = z["x"], z["y"]
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile):
        return None
    ok = (
        x.dtype == np.uint8 and x.ndim == 4 and x.shape[-1] == 3 and y.ndim == 1
        and len(x) == len(y) and len(y) > 0 and int(y.min()) >= 0 and int(y.max()) < n_classes
    )  # fmt: skip
    return (x, y) if ok else None


class ShapesDataset(Dataset):
    """Map-style dataset of (PIL image or transformed tensor, label) for one split."""

    def __init__(
        self,
        split: str = "novel",
        *,
        per_class: int = DEFAULT_PER_CLASS,
        seed: int = 0,
        transform=None,
        context_rho: float = 0.0,
    ):
        self.split = split
        self.name = "shapes-ctx" if context_rho > 0 else "shapes"
        self.x, self.y, self.class_names = load_arrays(
            split, per_class=per_class, seed=seed, context_rho=context_rho
        )
        self.labels = [int(v) for v in self.y]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        img = Image.fromarray(self.x[i])
        return (self.transform(img) if self.transform else img), int(self.y[i])

    def image_id(self, i: int) -> str:
        return f"{self.name}/{self.split}/{self.class_names[self.y[i]]}/{i:05d}"


def export_png_tree(root: Path, *, per_class: int = DEFAULT_PER_CLASS, seed: int = 0) -> int:
    """Write ``root/{split}/{class}/{i:04d}.png`` for every split; return the number of files."""
    n = 0
    for split in shapes.SPLITS:
        x, y, names = load_arrays(split, per_class=per_class, seed=seed)
        counters = dict.fromkeys(range(len(names)), 0)
        for img, label in zip(x, y, strict=True):
            k = counters[int(label)]
            counters[int(label)] += 1
            save_png(Image.fromarray(img), root / split / names[label] / f"{k:04d}.png")
            n += 1
    return n


def shapes_metadataset(
    split: str = "novel", *, per_class: int = DEFAULT_PER_CLASS, seed: int = 0, transform=None
):
    """A ``learn2learn.data.MetaDataset`` over one split (labels indexed without a full scan).

    ``split``: base/val/novel, or learn2learn's train/validation/test for the same splits.
    """
    from genie_plugin.data.datasets import metadataset

    ds = ShapesDataset(shapes_split(split), per_class=per_class, seed=seed, transform=transform)
    return metadataset(ds, ds.labels)


def load_shapes_split(split: str, *, context_rho: float = 0.0):
    """The embedded shapes dataset (32 procedural classes, 32 px; no download)."""
    from genie_plugin.data.datasets import SplitData, metadataset

    split = shapes_split(split)
    ds = ShapesDataset(split, context_rho=context_rho)
    return SplitData(
        ds.name,
        split,
        metadataset(ds, ds.labels),
        tuple(ds.class_names),
        lambda i: ds[i][0],
        ds.image_id,
        tuple(ds.class_names),
    )


def load_shapes_ctx_split(split: str):
    """The shapes set with a stated class–context correlation (``shapes-ctx``): the same
    classes and renderer, but 80% of each class's images lie on its class's typical background
    hue (the rest as in ``shapes``). For testing whether GeNIe's hard negatives help where
    context predicts the class, as it does in natural images."""
    return load_shapes_split(split, context_rho=CONTEXT_RHO)
