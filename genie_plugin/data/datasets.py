"""Benchmark datasets through learn2learn's own classes, with file checks in front of them.

The files are checked first (:mod:`genie_plugin.data.specs`), then the learn2learn dataset is
constructed with ``download=False`` (unless the user asks) and the ``MetaDataset`` built from
labels we compute, so its never-refreshed bookkeeping pickle is not used. Named datasets of
other distributions (the embedded ``shapes``) come from the entry-point group
``genie_plugin.datasets``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from genie_plugin import plugins
from genie_plugin.data import require_learn2learn
from genie_plugin.data.names import _text, class_word, wordnet_lemma
from genie_plugin.data.specs import (
    IMAGENET_SOURCE,
    DatasetError,
    _cub_classes,
    _spec,
    canonical_split,
    full_classes,
    mini_positions,
    require_split,
)
from genie_plugin.errors import GenieError


# ----------------------------------------------------------------------------- loading
def _file_number(p: Path) -> int:
    """ImageNet's file number (``n01532829_10011.JPEG`` -> 10011): the order the split uses."""
    tail = p.stem.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def _load_imagenet_split(name: str, split: str, root: Path, class_names: dict | None):
    """miniImageNet / tieredImageNet drawn from an ImageNet train folder at full resolution."""
    require_split(name, root, split)
    wnids = full_classes(name, split)
    files, labels, short = [], [], []
    for label, w in enumerate(wnids):
        found = sorted(
            (
                p
                for p in (root / "train" / w).iterdir()
                if p.suffix.lower() in (".jpeg", ".jpg", ".png")
            ),
            key=lambda p: (_file_number(p), p.name),
        )
        chosen = found
        if name.startswith("mini"):
            pos = mini_positions(w)
            if len(found) < pos[-1]:
                short.append(f"train/{w}/ has {len(found)} images, the split needs {pos[-1]}")
                continue
            chosen = [found[p - 1] for p in pos]
        files += chosen
        labels += [label] * len(chosen)
    if short:
        raise DatasetError(
            f"{name} ({split}) under {root} is not the full ImageNet train set:\n  "
            + "\n  ".join(short[:8])
            + f"\n  expected files come from {_spec(name).source}"
        )
    ds = ImageFileDataset(files, labels)
    names = tuple((class_names or {}).get(w) or wordnet_lemma(w) for w in wnids)
    prefix = f"{name}/{split}"
    return SplitData(
        name,
        split,
        metadataset(ds, labels),
        names,
        lambda i: ds[i][0],
        lambda i: f"{prefix}/{files[i].parent.name}/{files[i].name}",
        tuple(wnids),
    )


@dataclass
class SplitData:
    """A learn2learn ``MetaDataset`` plus what the strategies need: PIL images, ids, names."""

    dataset: str
    split: str
    metadataset: object
    class_names: tuple[str, ...]  # by dataset label: words, for prompts
    _image: Callable[[int], object]
    _image_id: Callable[[int], str]
    class_ids: tuple[str, ...] = ()  # by dataset label: as the files name them (wnid, folder)

    def image(self, i: int):
        """Image ``i`` as PIL; an unreadable file is one line naming it, not a traceback from
        deep inside learn2learn or PIL."""
        try:
            return self._image(i)
        except DatasetError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever the reader raised, name the image
            from genie_plugin.errors import InputImageError

            if isinstance(exc, InputImageError):
                raise DatasetError(f"{self.dataset} ({self.split}): {exc}") from None
            raise DatasetError(
                f"{self.dataset} ({self.split}): image {self.image_id(i)} is unreadable "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                "replace the file or re-extract the dataset"
            ) from None

    def image_id(self, i: int) -> str:
        return self._image_id(i)

    def label(self, i: int) -> int:
        return int(self.metadataset.indices_to_labels[i])


def _torch_dataset():
    from torch.utils.data import Dataset

    return Dataset


class _NoBookkeeping(_torch_dataset()):
    """Delegating view of a learn2learn dataset without ``_bookkeeping_path``.

    ``MetaDataset`` prefers a bookkeeping pickle next to the data over the labels it is given,
    and never refreshes it (a stale one silently pairs images with the wrong labels); without
    the attribute it uses our labels and writes nothing.
    """

    def __init__(self, inner) -> None:
        self.inner = inner

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, i):
        return self.inner[i]


class ImageFileDataset(_torch_dataset()):
    """(PIL image, label) from a list of image files, opened lazily (full-resolution sources)."""

    def __init__(self, files: list[Path], labels: list[int]) -> None:
        self.files, self.labels = files, labels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        from genie_plugin.io import load_image  # EXIF, 16-bit, CMYK...; one line if corrupt

        return load_image(self.files[i]), self.labels[i]


def metadataset(ds, labels):
    """A learn2learn ``MetaDataset`` over ``ds`` with ``labels`` (no bookkeeping pickle)."""
    l2l = require_learn2learn()
    if hasattr(ds, "_bookkeeping_path"):
        ds = _NoBookkeeping(ds)
    l2i: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        l2i.setdefault(int(y), []).append(i)
    return l2l.data.MetaDataset(ds, labels_to_indices=l2i)


def _check_mini(data) -> None:
    """What learn2learn's MiniImagenet assumes and does not check: uint8 N×H×W×3 pixels and a
    class_dict listing every image exactly once (an unlisted image silently gets label 1)."""
    import numpy as np

    x = data["image_data"]
    if not (isinstance(x, np.ndarray) and x.dtype == np.uint8 and x.ndim == 4 and x.shape[3] == 3):
        got = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
        raise ValueError(f"image_data must be a uint8 N×H×W×3 array, got {got}")
    listed = sorted(int(i) for idxs in data["class_dict"].values() for i in idxs)
    if listed != list(range(len(x))):
        raise ValueError(f"class_dict must list each of the {len(x)} images exactly once")


def _l2l_split(l2v, name: str, split: str, root: Path, download: bool, class_names):
    """learn2learn's dataset for the split, checked beyond what learn2learn checks (a wrong
    file there fails deep inside it, or worse loads with wrong labels): ValueError says why."""
    import numpy as np
    from PIL import Image

    if name == "mini-imagenet":
        ds = l2v.MiniImagenet(str(root), mode=split, download=download)
        _check_mini(ds.data)
        wnids = list(ds.data["class_dict"].keys())  # label order = insertion order (index_classes)
        ids = tuple(wnids)
        names = tuple((class_names or {}).get(w) or wordnet_lemma(w) for w in wnids)

        def image(i):
            return Image.fromarray(ds.x[i].permute(1, 2, 0).numpy().astype(np.uint8))

        labels = [int(v) for v in ds.y]
    elif name == "tiered-imagenet":
        from genie_plugin.data.safe_pickle import load_restricted

        ds = l2v.TieredImagenet(str(root), mode=split, download=download)
        labels = [int(v) for v in ds.labels]
        if len(labels) != len(ds.images) or min(labels, default=-1) < 0:
            raise ValueError(
                f"{len(ds.images)} images but {len(labels)} labels (must match, labels >= 0)"
            )
        short = "val" if split == "validation" else split
        meta = load_restricted(root / "tiered-imagenet" / f"{short}_labels.pkl")
        strs = meta.get("label_specific_str") if isinstance(meta, dict) else None
        n = max(labels) + 1
        if strs is not None and len(strs) < n:
            raise ValueError(f"label_specific_str names {len(strs)} classes, labels use {n}")
        ids = tuple(_text(strs[i]) if strs is not None else str(i) for i in range(n))
        names = tuple(
            (class_names or {}).get(i)
            or (class_word(strs[i]) if strs is not None else f"class {i}")
            for i in range(n)
        )

        def image(i):
            return ds[i][0].convert("RGB")
    elif name == "cub":
        ds = l2v.CUBirds200(str(root), mode=split, download=download)
        # os.listdir order differs between file systems: sort this instance's list so episode
        # indices (and so results) are the same on every machine.
        ds.data.sort(key=lambda t: (t[1], os.path.basename(t[0])))
        labels = [int(y) for _, y in ds.data]
        ids = tuple(_cub_classes(split))
        names = tuple((class_names or {}).get(c) or class_word(c) for c in ids)

        def image(i):
            return ds[i][0]
    elif name == "cifarfs":
        ds = l2v.CIFARFS(str(root), mode=split, download=download)
        labels = [int(y) for _, y in ds.samples]  # ImageFolder: classes sorted by folder name
        ids = tuple(ds.classes)
        names = tuple((class_names or {}).get(c) or c.replace("_", " ") for c in ids)

        def image(i):
            return ds[i][0].convert("RGB")
    elif name == "fc100":
        from genie_plugin.data.specs import CIFAR100_CLASSES

        ds = l2v.FC100(str(root), mode=split, download=download)
        fine = [int(v) for v in ds.labels]  # CIFAR-100 fine ids: remapped to 0..n-1
        if len(fine) != len(ds.images) or min(fine, default=-1) < 0 or max(fine) >= 100:
            raise ValueError(f"{len(ds.images)} images, {len(fine)} labels in 0..99 expected")
        used = sorted(set(fine))
        index = {f: k for k, f in enumerate(used)}
        labels = [index[f] for f in fine]
        ids = tuple(CIFAR100_CLASSES[f] for f in used)
        names = tuple((class_names or {}).get(c) or c.replace("_", " ") for c in ids)

        def image(i):
            return Image.fromarray(np.asarray(ds.images[i], dtype=np.uint8)).convert("RGB")
    else:  # pragma: no cover - _spec raised already
        raise AssertionError(name)
    return ds, ids, names, image, labels


def load_split(
    name: str,
    split: str,
    *,
    root: str | Path | None = None,
    download: bool = False,
    class_names: dict | None = None,
) -> SplitData:
    """Load one split through learn2learn's dataset class, or a named dataset's loader."""

    if plugins.has(plugins.DATASETS, name):  # a named dataset: the embedded shapes, a plugin's
        return plugins.load(plugins.DATASETS, name)(split)
    _spec(name)
    split = canonical_split(split)
    if root is None:
        raise DatasetError(f"dataset {name!r} needs a root folder (--root DIR)")
    root = Path(root).expanduser()
    if name.endswith("-full"):
        if download:
            raise DatasetError(
                f"{name}: ImageNet cannot be downloaded for you; get {IMAGENET_SOURCE}"
            )
        return _load_imagenet_split(name, split, root, class_names)
    if not download:
        require_split(name, root, split)
    l2v = require_learn2learn().vision.datasets
    os.makedirs(root, exist_ok=True)
    from genie_plugin.data.safe_pickle import check_dataset_pickle

    for rel in _spec(name).files(split):  # before learn2learn unpickles them: no code runs
        if rel.endswith((".pkl", ".pickle")) and (root / rel).is_file():
            check_dataset_pickle(root / rel)
    try:
        ds, ids, names, image, labels = _l2l_split(l2v, name, split, root, download, class_names)
    except GenieError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever learn2learn, pickle or numpy raised
        spec = _spec(name)
        files = " and ".join(spec.files(split)) if name != "cub" else "cubirds200/"
        why = str(exc).splitlines()[0] if str(exc) else ""
        raise DatasetError(
            f"{name} ({split}) under {root}: {files} cannot be read as learn2learn's {name} "
            f"files ({type(exc).__name__}: {why}); download them again from {spec.source}"
        ) from None
    prefix = f"{name}/{split}"

    def image_id(i):
        if name == "cub":
            p = Path(ds.data[i][0])
            return f"{prefix}/{p.parent.name}/{p.name}"
        return f"{prefix}/{i:06d}"

    return SplitData(name, split, metadataset(ds, labels), names, image, image_id, ids)
