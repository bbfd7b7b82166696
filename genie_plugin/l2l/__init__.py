"""The learn2learn plugin: ``get_tasksets`` with a generative strategy (see ``l2l.plugin``).

The data it draws from (dataset files, splits, episodes) is :mod:`genie_plugin.data`.
"""

from __future__ import annotations

from genie_plugin.data import require_learn2learn

__all__ = ["augment", "get_tasksets", "one_task", "require_learn2learn"]


def get_tasksets(*args, **kwargs):
    """``learn2learn.vision.benchmarks.get_tasksets`` with a strategy (see ``l2l.plugin``)."""
    from genie_plugin.l2l.plugin import get_tasksets as _get

    return _get(*args, **kwargs)


def augment(*args, **kwargs):
    """A learn2learn ``Taskset`` you built yourself, with a strategy (see ``l2l.plugin``)."""
    from genie_plugin.l2l.plugin import augment as _augment

    return _augment(*args, **kwargs)


def one_task(batch):
    """``DataLoader(..., collate_fn=one_task)``: tasks keep their generated images."""
    from genie_plugin.l2l.plugin import one_task as _one

    return _one(batch)
