"""Materialised episode lists sampled through learn2learn's own task transforms.

learn2learn samples with Python's global ``random``; we never patch it. Each episode's
description is drawn inside :func:`isolated_random`, which seeds the global generator from a
stable hash of (run seed, episode) and restores the caller's state afterwards, so the list is
reproducible and the caller's RNG is untouched. Support and query are split *after* sampling
(first ``shots`` indices of each class are support), so they never overlap; the list is hashed
and the hash goes into every result.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
from dataclasses import asdict, dataclass

from genie_plugin.data import require_learn2learn
from genie_plugin.errors import ConfigError
from genie_plugin.seeding import stable_seed


@contextlib.contextmanager
def isolated_random(seed: int):
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


@dataclass(frozen=True)
class EpisodeIndices:
    """One episode: dataset labels in episode order and per-class support/query sample indices."""

    index: int
    labels: tuple[int, ...]
    support: tuple[tuple[int, ...], ...]
    query: tuple[tuple[int, ...], ...]


def check_split_size(
    metadataset, *, ways: int, samples: int, where: str = "split", class_names=None
) -> None:
    """Raise before sampling when a split cannot give ``ways``-way tasks of ``samples`` images
    per class (learn2learn would fail later, inside ``random.sample``), naming the counts."""
    sizes = {lab: len(idx) for lab, idx in metadataset.labels_to_indices.items()}
    if ways > len(sizes):
        raise ConfigError(
            f"{where}: {ways} ways asked, but the split has only {len(sizes)} classes"
        )
    small = sorted(lab for lab, n in sizes.items() if n < samples)
    if small:
        first = class_names[small[0]] if class_names else small[0]
        raise ConfigError(
            f"{where}: {samples} samples per class asked, {len(small)} classes have fewer "
            f"(e.g. {first!r}: {sizes[small[0]]})"
        )


def materialise_episodes(
    metadataset, *, ways: int, shots: int, queries: int, episodes: int, seed: int
) -> list[EpisodeIndices]:
    l2l = require_learn2learn()
    from learn2learn.data.transforms import KShots, NWays

    check_split_size(metadataset, ways=ways, samples=shots + queries)
    taskset = l2l.data.Taskset(
        metadataset,
        task_transforms=[NWays(metadataset, ways), KShots(metadataset, shots + queries)],
        num_tasks=-1,
    )
    out = []
    for e in range(episodes):
        with isolated_random(stable_seed(seed, "episode", e)):
            desc = taskset.sample_task_description()
        by_label: dict[int, list[int]] = {}
        for d in desc:
            by_label.setdefault(int(metadataset.indices_to_labels[d.index]), []).append(
                int(d.index)
            )
        labels = tuple(by_label)
        support = tuple(tuple(by_label[lab][:shots]) for lab in labels)
        query = tuple(tuple(by_label[lab][shots:]) for lab in labels)
        flat_s = {i for s in support for i in s}
        if flat_s & {i for q in query for i in q} or len(flat_s) != ways * shots:
            raise AssertionError(
                f"episode {e}: support/query overlap"
            )  # would be a learn2learn bug
        out.append(EpisodeIndices(e, labels, support, query))
    return out


def episodes_hash(episodes: list[EpisodeIndices]) -> str:
    payload = json.dumps([asdict(e) for e in episodes], sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(payload.encode()).hexdigest()[:16]
