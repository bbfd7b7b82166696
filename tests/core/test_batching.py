import pytest

from genie_plugin.core.batching import auto_max_batch, bucket_for, graph_buckets
from genie_plugin.errors import ConfigError

GIB = 1 << 30


def test_auto_max_batch_fills_headroom_in_multiples():
    # 10 GiB free, 100 MiB per item: 0.8 * 10240 / 100 = 81.9 -> 80 (multiple of 8)
    assert auto_max_batch(10 * GIB, 100 * (1 << 20)) == 80
    assert auto_max_batch(10 * GIB, 100 * (1 << 20), headroom=0.5) == 48
    assert auto_max_batch(10 * GIB, 100 * (1 << 20), multiple=1) == 81
    # more memory never gives a smaller batch
    sizes = [auto_max_batch(g * GIB, 300 * (1 << 20)) for g in (1, 2, 4, 8, 16)]
    assert sizes == sorted(sizes)


def test_auto_max_batch_bounds():
    assert auto_max_batch(80 * GIB, 1 << 20) == 256  # capped
    assert auto_max_batch(1 << 20, 1 * GIB) == 1  # never zero
    assert auto_max_batch(5 * (1 << 20), 1 << 20, multiple=8) == 4  # below one multiple: as is
    for bad in (0, -1):
        with pytest.raises(ConfigError):
            auto_max_batch(GIB, bad)
    with pytest.raises(ConfigError):
        auto_max_batch(GIB, 1, headroom=1.5)


def test_graph_buckets_and_padding_bound():
    b = graph_buckets(96)
    assert b == (1, 2, 4, 8, 16, 32, 64, 96)
    for n in range(1, 97):
        k = bucket_for(n, b)
        assert n <= k < 2 * n  # padding never doubles a step's work
        assert k in b
    with pytest.raises(ConfigError, match="exceeds"):
        bucket_for(97, b)
    with pytest.raises(ConfigError):
        graph_buckets(0)
