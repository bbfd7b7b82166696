"""Which files each real dataset's learn2learn class reads, and checks of them before loading.

learn2learn's loaders either download (``download=True``) or fail deep inside ``pickle.load``;
a blocked download leaves an HTML page saved as the ``.pkl``. We check the exact files each
class reads first and say what is missing and where it comes from.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from genie_plugin import plugins
from genie_plugin.errors import GenieError, UnknownNameError

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
    from genie_plugin.data import require_learn2learn

    splits = require_learn2learn().vision.datasets.cu_birds200.SPLITS  # quiet first import
    return list(splits["validation" if split == "validation" else split])


def _cub_files(split: str) -> list[str]:
    return [f"cubirds200/CUB_200_2011/images/{c}/" for c in _cub_classes(split)]


def _cifarfs_files(split: str) -> list[str]:
    return [f"cifarfs/processed/{'val' if split == 'validation' else split}/"]


def _fc100_files(split: str) -> list[str]:
    return [f"FC100_{'val' if split == 'validation' else split}.pickle"]


#: CIFAR-100's fine labels in label order (FC100 stores these ids; CIFAR-FS names its folders).
CIFAR100_CLASSES = (  # noqa: SIM905 - rows of names read better than 100 quoted ones
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus "
    "butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch "
    "crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house "
    "kangaroo keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle "
    "mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree "
    "plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew "
    "skunk skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table tank "
    "telephone television tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf "
    "woman worm"
).split()
assert len(CIFAR100_CLASSES) == 100


@functools.cache
def split_definition(name: str) -> dict:
    """A shipped split definition (``data/splits/<name>.json``; see
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
    "cifarfs": DatasetSpec(
        "cifarfs",
        ("train", "validation", "test"),
        "learn2learn's CIFARFS(root, download=True) (https://zenodo.org/record/7978538/files/"
        "cifar100.zip, split by Bertinetto et al. into ROOT/cifarfs/processed/<split>/<class>/)",
        _cifarfs_files,
    ),
    "fc100": DatasetSpec(
        "fc100",
        ("train", "validation", "test"),
        "learn2learn's FC100(root, download=True) (https://zenodo.org/record/7978538/files/"
        "FC100.zip: ROOT/FC100_<split>.pickle)",
        _fc100_files,
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


def all_datasets() -> list[str]:
    """Named datasets (entry points: the embedded shapes, plugins') and the real ones."""
    return [*plugins.names(plugins.DATASETS), *REAL_DATASETS]


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
            f"unknown dataset {name!r}; choose one of {all_datasets()}"
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
