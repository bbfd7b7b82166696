"""Build the shipped split definitions (genie_plugin/data/splits/*.json) from the public CSVs.

    python scripts/make_split_definitions.py CSV_DIR

CSV_DIR holds the miniImageNet split of Ravi & Larochelle (ICLR 2017) as
``mini_{train,val,test}.csv`` (``filename,label`` rows such as ``n0153282900000005.jpg,n01532829``:
the class's 5th image in ImageNet's train folder when sorted by file number) and
tieredImageNet's class lists (Ren et al., ICLR 2018) as ``tiered_{train,val,test}.csv``
(``wnid,category`` rows). Both come from github.com/renmengye/few-shot-ssl-public
(fewshot/data/{mini_imagenet_split/Ravi,tiered_imagenet_split}). The miniImageNet positions are
stored as one bitmask per class (bit p-1 = position p), with the CSVs' sha256 so that a test can
rebuild the CSVs byte for byte.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

SPLITS = {"train": "train", "val": "validation", "test": "test"}
OUT = Path(__file__).resolve().parents[1] / "genie_plugin" / "data" / "splits"


def main(src: Path) -> None:
    mini = {
        "source": "miniImageNet split of Ravi & Larochelle (ICLR 2017): the CSVs of "
        "github.com/renmengye/few-shot-ssl-public fewshot/data/mini_imagenet_split/Ravi",
        "encoding": "per class, base64 of numpy.packbits(bitorder='little') over positions "
        "1..N in the class's ImageNet train files sorted by file number (bit p-1 = position p)",
        "csv_sha256": {},
        "splits": {},
    }
    for short, split in SPLITS.items():
        raw = (src / f"mini_{short}.csv").read_bytes()
        mini["csv_sha256"][split] = hashlib.sha256(raw).hexdigest()
        classes: dict[str, list[int]] = {}
        for name, wnid in list(csv.reader(raw.decode().splitlines()))[1:]:
            classes.setdefault(wnid, []).append(int(name[len(wnid) : -4]))
        masks = {}
        for wnid, pos in classes.items():
            bits = np.zeros(max(pos), dtype=np.uint8)
            bits[np.asarray(pos) - 1] = 1
            masks[wnid] = base64.b64encode(np.packbits(bits, bitorder="little")).decode()
        mini["splits"][split] = masks
    tiered = {
        "source": "tieredImageNet class lists of Ren et al. (ICLR 2018): the CSVs of "
        "github.com/renmengye/few-shot-ssl-public fewshot/data/tiered_imagenet_split; every "
        "ImageNet train image of a listed class belongs to the split",
        "splits": {},
    }
    for short, split in SPLITS.items():
        rows = csv.reader((src / f"tiered_{short}.csv").read_text().splitlines())
        tiered["splits"][split] = {wnid: category for wnid, category in rows}
    OUT.mkdir(parents=True, exist_ok=True)
    for name, d in (("mini_imagenet", mini), ("tiered_imagenet", tiered)):
        (OUT / f"{name}.json").write_text(json.dumps(d, indent=1, sort_keys=True) + "\n")
        print(f"wrote {OUT / name}.json")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
