"""Episode lists through learn2learn's transforms: reproducible, disjoint, caller RNG untouched."""

import random

import pytest

from genie_plugin.data.episodes import episodes_hash, materialise_episodes  # noqa: E402
from genie_plugin.embedded.dataset import shapes_metadataset  # noqa: E402


@pytest.fixture(scope="module")
def md():
    return shapes_metadataset("novel")


def test_support_and_query_never_overlap(md):
    eps = materialise_episodes(md, ways=5, shots=5, queries=16, episodes=30, seed=0)
    for e in eps:
        assert len(e.labels) == len(set(e.labels)) == 5
        s = [i for idx in e.support for i in idx]
        q = [i for idx in e.query for i in idx]
        assert len(s) == 25 and len(q) == 80
        assert not set(s) & set(q)
        assert len(set(q)) == len(q)
        for lab, si, qi in zip(e.labels, e.support, e.query, strict=True):
            assert all(md.indices_to_labels[i] == lab for i in (*si, *qi))


def test_reproducible_hash_and_seed_dependence(md):
    state = random.getstate()
    a = materialise_episodes(md, ways=5, shots=1, queries=16, episodes=10, seed=0)
    assert random.getstate() == state  # the caller's global RNG is restored
    b = materialise_episodes(md, ways=5, shots=1, queries=16, episodes=10, seed=0)
    c = materialise_episodes(md, ways=5, shots=1, queries=16, episodes=10, seed=1)
    assert a == b and episodes_hash(a) == episodes_hash(b)
    assert episodes_hash(a) != episodes_hash(c)


def test_too_many_ways_is_a_clear_error(md):
    from genie_plugin.errors import ConfigError

    with pytest.raises(ConfigError, match="only 8 classes"):
        materialise_episodes(md, ways=9, shots=1, queries=1, episodes=1, seed=0)
