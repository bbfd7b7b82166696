"""Named providers declared as entry points: how a layer finds what a layer above it supplies.

A lower layer never imports the embedded default or a third-party package: it asks for a name
in an entry-point group, and the distribution that owns the name declares it in its
pyproject (``[project.entry-points."genie_plugin.models"]``). Groups:

- ``genie_plugin.models``: model alias -> function returning the model's diffusers folder;
- ``genie_plugin.backbones``: backbone name -> ``fn(*, device) -> Embedder``;
- ``genie_plugin.datasets``: dataset name -> ``fn(split) -> SplitData``;
- ``genie_plugin.strategies``: see :mod:`genie_plugin.registry`.
"""

from __future__ import annotations

import functools
from importlib import metadata

from genie_plugin.errors import GenieError

MODELS = "genie_plugin.models"
BACKBONES = "genie_plugin.backbones"
DATASETS = "genie_plugin.datasets"
#: Judges of generated images per dataset (``genie bench report``): ``factory(device)`` returns an
#: object with ``classes`` (class names) and ``probs(images)`` (n × classes). Never a backbone.
ORACLES = "genie_plugin.oracles"
DIST_NAME = "genie-fewshot"


@functools.cache
def _group(group: str) -> dict[str, metadata.EntryPoint]:
    eps = {}
    for ep in metadata.entry_points(group=group):
        eps.setdefault(ep.name, ep)  # the first installed distribution wins, as importlib does
    if not eps and group in (MODELS, BACKBONES, DATASETS):
        raise GenieError(
            f"no {group} entry points found: genie-fewshot's metadata is missing (a source tree "
            "that was never installed); run `pip install -e .` in the checkout"
        )
    return eps


def names(group: str) -> list[str]:
    """The names declared in ``group``, sorted."""
    return sorted(_group(group))


def has(group: str, name: str) -> bool:
    return name in _group(group)


@functools.cache
def load(group: str, name: str):
    """The object the entry point ``name`` of ``group`` names (KeyError if none)."""
    return _group(group)[name].load()


def summary(group: str, name: str) -> str:
    """The first line of the provider's docstring (for help texts and error messages)."""
    doc = (getattr(load(group, name), "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""
