"""The learn2learn plugin: ``get_tasksets`` with a generative strategy (see ``l2l.plugin``).

The data it draws from (dataset files, splits, episodes) is :mod:`genie_plugin.data`.
"""

from __future__ import annotations

from genie_plugin.data import require_learn2learn

__all__ = ["get_tasksets", "require_learn2learn"]


def get_tasksets(*args, **kwargs):
    """``learn2learn.vision.benchmarks.get_tasksets`` with a strategy (see ``l2l.plugin``)."""
    from genie_plugin.l2l.plugin import get_tasksets as _get

    return _get(*args, **kwargs)
