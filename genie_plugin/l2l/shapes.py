"""The embedded shapes dataset as a learn2learn ``MetaDataset``."""

from __future__ import annotations

from genie_plugin.l2l import require_learn2learn


def shapes_metadataset(
    split: str = "novel", *, per_class: int = 120, seed: int = 0, transform=None
):
    """A ``learn2learn.data.MetaDataset`` over one split (labels indexed without a full scan).

    ``split``: base/val/novel, or learn2learn's train/validation/test for the same splits.
    """
    l2l = require_learn2learn()
    from genie_plugin.embedded.dataset import ShapesDataset, shapes_split

    split = shapes_split(split)
    ds = ShapesDataset(split, per_class=per_class, seed=seed, transform=transform)
    labels_to_indices: dict[int, list[int]] = {}
    for i, y in enumerate(ds.labels):
        labels_to_indices.setdefault(y, []).append(i)
    return l2l.data.MetaDataset(ds, labels_to_indices=labels_to_indices)
