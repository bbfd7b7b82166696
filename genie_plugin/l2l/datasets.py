"""Benchmark datasets through learn2learn's own classes, with file checks in front of them.

learn2learn's loaders either download (``download=True``) or fail deep inside ``pickle.load``;
a blocked download leaves an HTML page saved as the ``.pkl``. We check the exact files each
class reads first and say what is missing and where it comes from, then construct the
learn2learn dataset with ``download=False`` (unless the user asks) and build the
``MetaDataset`` from labels we compute, so its never-refreshed bookkeeping pickle is not used.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from genie_plugin.errors import GenieError, UnknownNameError

_WNID = re.compile(r"^n\d{8}$")


def wordnet_lemma(wnid: str) -> str:
    """The prompt word of an ImageNet class: the first lemma of its WordNet synset, from timm's
    ImageNet metadata (``n02108089`` -> ``boxer``). Not an ImageNet-1k id: returned as given."""
    if not _WNID.match(wnid):
        return wnid
    from timm.data import ImageNetInfo

    descriptions = _imagenet_descriptions(ImageNetInfo)
    if wnid not in descriptions:
        return wnid
    return descriptions[wnid].split(",")[0].strip()


@functools.cache
def _imagenet_descriptions(cls) -> dict[str, str]:
    """WordNet id -> timm's description ("lemma, other lemmas") for ImageNet-1k's classes."""
    info = cls()
    return {w: info.label_name_to_description(w) for w in info.label_names()}


def class_word(name: str) -> str:
    """A class label as words: WordNet id -> lemma, CUB's ``017.Cardinal`` -> ``Cardinal``,
    underscores -> spaces."""
    name = _text(name)
    if _WNID.match(name):
        return wordnet_lemma(name)
    return re.sub(r"^\d+\.", "", name).replace("_", " ")


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def is_synset_id(text: str) -> bool:
    """True if ``text`` holds a WordNet id anywhere (a prompt no diffusion model understands)."""
    return re.search(r"\bn\d{8}\b", text) is not None


SPLIT_ALIASES = {
    "train": "train",
    "base": "train",
    "validation": "validation",
    "val": "validation",
    "test": "test",
    "novel": "test",
}


class DatasetError(GenieError, FileNotFoundError):
    """A benchmark dataset folder is missing files or holds unreadable ones."""


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    splits: tuple[str, ...]
    source: str  # where the files come from
    files: Callable[[str], list[str]]  # split -> relative paths learn2learn reads


def _mini_files(split: str) -> list[str]:
    return [f"mini-imagenet-cache-{split}.pkl"]


def _tiered_files(split: str) -> list[str]:
    short = "val" if split == "validation" else split
    return [f"tiered-imagenet/{short}_images_png.pkl", f"tiered-imagenet/{short}_labels.pkl"]


def _cub_classes(split: str) -> list[str]:
    from genie_plugin.l2l import require_learn2learn

    splits = require_learn2learn().vision.datasets.cu_birds200.SPLITS  # quiet first import
    return list(splits["validation" if split == "validation" else split])


def _cub_files(split: str) -> list[str]:
    return [f"cubirds200/CUB_200_2011/images/{c}/" for c in _cub_classes(split)]


@functools.cache
def split_definition(name: str) -> dict:
    """A shipped split definition (``l2l/splits/<name>.json``; see
    ``scripts/make_split_definitions.py`` for its source and encoding)."""
    import json

    return json.loads((Path(__file__).with_name("splits") / f"{name}.json").read_text())


def full_classes(dataset: str, split: str) -> list[str]:
    """WordNet ids of a split of ``mini-imagenet-full``/``tiered-imagenet-full``, sorted."""
    key = "mini_imagenet" if dataset.startswith("mini") else "tiered_imagenet"
    return sorted(split_definition(key)["splits"][split])


def mini_positions(wnid: str) -> list[int]:
    """1-based positions, among the class's ImageNet train files sorted by file number, of the
    600 images miniImageNet (Ravi & Larochelle) takes from class ``wnid``."""
    import base64

    import numpy as np

    for masks in split_definition("mini_imagenet")["splits"].values():
        if wnid in masks:
            bits = np.unpackbits(
                np.frombuffer(base64.b64decode(masks[wnid]), dtype=np.uint8), bitorder="little"
            )
            return [int(p) + 1 for p in np.flatnonzero(bits)]
    raise KeyError(wnid)


IMAGENET_SOURCE = (
    "the ImageNet (ILSVRC2012) training set from https://image-net.org "
    "(ILSVRC2012_img_train.tar, one tar per class inside), extracted so that "
    "ROOT/train/<wnid>/<wnid>_<number>.JPEG exist"
)


def _imagenet_files(dataset: str):
    def files(split: str) -> list[str]:
        return [f"train/{w}/" for w in full_classes(dataset, split)]

    return files


SPECS = {
    "mini-imagenet": DatasetSpec(
        "mini-imagenet",
        ("train", "validation", "test"),
        "learn2learn's mirrors, e.g. https://zenodo.org/record/7978538 "
        "(mini-imagenet-cache-<split>.pkl)",
        _mini_files,
    ),
    "tiered-imagenet": DatasetSpec(
        "tiered-imagenet",
        ("train", "validation", "test"),
        "https://zenodo.org/record/7978538 (tiered-imagenet-<split>_{images_png,labels}.pkl, "
        "saved without the 'tiered-imagenet-' prefix inside ROOT/tiered-imagenet/)",
        _tiered_files,
    ),
    "cub": DatasetSpec(
        "cub",
        ("train", "validation", "test"),
        "https://zenodo.org/record/8000562/files/CUB_200_2011.tgz extracted into ROOT/cubirds200/",
        _cub_files,
    ),
}
SPECS["mini-imagenet-full"] = DatasetSpec(
    "mini-imagenet-full",
    ("train", "validation", "test"),
    IMAGENET_SOURCE + " (miniImageNet's classes and images by Ravi & Larochelle's split)",
    _imagenet_files("mini-imagenet-full"),
)
SPECS["tiered-imagenet-full"] = DatasetSpec(
    "tiered-imagenet-full",
    ("train", "validation", "test"),
    IMAGENET_SOURCE + " (tieredImageNet's classes, every image of each)",
    _imagenet_files("tiered-imagenet-full"),
)
REAL_DATASETS = tuple(SPECS)
ALL_DATASETS = ("shapes", *REAL_DATASETS)


def canonical_split(split: str) -> str:
    try:
        return SPLIT_ALIASES[split]
    except KeyError:
        raise UnknownNameError(
            f"unknown split {split!r}; choose one of {sorted(set(SPLIT_ALIASES))}"
        ) from None


def _spec(name: str) -> DatasetSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown dataset {name!r}; choose one of {list(ALL_DATASETS)}"
        ) from None


def sniff_pickle(path: Path) -> str | None:
    """None if ``path`` looks like a pickle, else why not (HTML page, empty, other bytes)."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    if not head:
        return "is empty"
    stripped = head.lstrip()
    if stripped[:1] == b"<" or stripped[:9].lower() in (b"<!doctype", b"<html"):
        return (
            "is an HTML page, not a pickle (a blocked or quota-limited download saved the "
            "error page); download it again from the source"
        )
    if head[:1] != b"\x80":
        return f"does not start like a pickle (first bytes {head[:8]!r})"
    return None


@dataclass
class DatasetReport:
    dataset: str
    root: Path
    present: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    corrupt: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.corrupt

    def split_ok(self, split: str) -> bool:
        need = set(_spec(self.dataset).files(split))
        bad = set(self.missing) | {p for p, _ in self.corrupt}
        return not (need & bad)


def check_dataset(name: str, root: str | Path, splits=None) -> DatasetReport:
    """Which of the files learn2learn reads for ``name`` are present, missing or corrupt."""
    spec = _spec(name)
    root = Path(root).expanduser()
    rep = DatasetReport(name, root)
    for split in splits or spec.splits:
        for rel in spec.files(split):
            p = root / rel
            if rel.endswith("/"):
                if p.is_dir() and any(p.iterdir()):
                    rep.present.append(rel)
                elif p.is_dir():
                    rep.corrupt.append((rel, "is an empty folder"))
                else:
                    rep.missing.append(rel)
            elif not p.is_file():
                rep.missing.append(rel)
            else:
                why = sniff_pickle(p)
                if why:
                    rep.corrupt.append((rel, why))
                else:
                    rep.present.append(rel)
    return rep


def require_split(name: str, root: str | Path, split: str) -> None:
    rep = check_dataset(name, root, [split])
    if rep.ok:
        return
    lines = [f"{name} ({split}) under {rep.root} is not usable:"]
    shown = rep.missing[:8]
    lines += [f"  missing {m}" for m in shown]
    if len(rep.missing) > len(shown):
        lines.append(f"  ... and {len(rep.missing) - len(shown)} more missing")
    lines += [f"  {p} {why}" for p, why in rep.corrupt[:8]]
    lines.append(f"  expected files come from {_spec(name).source}")
    fetch = "" if name.endswith("-full") else "; `genie datasets download` fetches them"
    lines.append(f"  (`genie datasets check {rep.root}` lists every split{fetch})")
    raise DatasetError("\n".join(lines))


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
        _metadataset(ds, labels),
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
        return self._image(i)

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
        from PIL import Image

        with Image.open(self.files[i]) as im:
            return im.convert("RGB"), self.labels[i]


def _metadataset(ds, labels):
    from genie_plugin.l2l import require_learn2learn

    l2l = require_learn2learn()
    if hasattr(ds, "_bookkeeping_path"):
        ds = _NoBookkeeping(ds)
    l2i: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        l2i.setdefault(int(y), []).append(i)
    return l2l.data.MetaDataset(ds, labels_to_indices=l2i)


def load_split(
    name: str,
    split: str,
    *,
    root: str | Path | None = None,
    download: bool = False,
    class_names: dict | None = None,
) -> SplitData:
    """Load one split through learn2learn's dataset class (``shapes``: the embedded dataset)."""
    import numpy as np
    from PIL import Image

    if name == "shapes":
        from genie_plugin.embedded.dataset import ShapesDataset, shapes_split

        split = shapes_split(split)
        ds = ShapesDataset(split)
        return SplitData(
            "shapes",
            split,
            _metadataset(ds, ds.labels),
            tuple(ds.class_names),
            lambda i: ds[i][0],
            ds.image_id,
            tuple(ds.class_names),
        )
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
    from genie_plugin.l2l import require_learn2learn

    l2v = require_learn2learn().vision.datasets

    os.makedirs(root, exist_ok=True)
    if name == "mini-imagenet":
        ds = l2v.MiniImagenet(str(root), mode=split, download=download)
        wnids = list(ds.data["class_dict"].keys())  # label order = insertion order (index_classes)
        ids = tuple(wnids)
        names = tuple((class_names or {}).get(w) or wordnet_lemma(w) for w in wnids)

        def image(i):
            return Image.fromarray(ds.x[i].permute(1, 2, 0).numpy().astype(np.uint8))

        labels = [int(v) for v in ds.y]
    elif name == "tiered-imagenet":
        import pickle

        ds = l2v.TieredImagenet(str(root), mode=split, download=download)
        labels = [int(v) for v in ds.labels]
        short = "val" if split == "validation" else split
        with open(root / "tiered-imagenet" / f"{short}_labels.pkl", "rb") as fh:
            meta = pickle.load(fh)
        strs = meta.get("label_specific_str") if isinstance(meta, dict) else None
        n = max(labels) + 1
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
    else:  # pragma: no cover - _spec raised already
        raise AssertionError(name)
    prefix = f"{name}/{split}"

    def image_id(i):
        if name == "cub":
            p = Path(ds.data[i][0])
            return f"{prefix}/{p.parent.name}/{p.name}"
        return f"{prefix}/{i:06d}"

    return SplitData(name, split, _metadataset(ds, labels), names, image, image_id, ids)
