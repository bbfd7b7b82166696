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


def test_batching_boundaries():
    # headroom 1 is allowed (all free memory), 0 is not; exactly one multiple stays a multiple
    assert auto_max_batch(64, 1, headroom=1.0, cap=1000) == 64
    assert auto_max_batch(8, 1, headroom=1.0, multiple=8) == 8
    assert auto_max_batch(15, 1, headroom=1.0, multiple=8) == 8
    assert auto_max_batch(300, 1, headroom=1.0, cap=100) == 100
    with pytest.raises(ConfigError, match=r"headroom must be in \(0, 1\], got 0"):
        auto_max_batch(GIB, 1, headroom=0)
    with pytest.raises(ConfigError, match="bytes_per_item must be > 0, got -1"):
        auto_max_batch(GIB, -1)
    # a power of two is its own last bucket, once
    assert graph_buckets(1) == (1,)
    assert graph_buckets(8) == (1, 2, 4, 8)
    assert graph_buckets(9) == (1, 2, 4, 8, 9)
    assert bucket_for(1, (1, 2)) == 1 and bucket_for(2, (1, 2)) == 2
    with pytest.raises(ConfigError, match="max_rows must be >= 1, got 0"):
        graph_buckets(0)
    with pytest.raises(
        ConfigError, match="batch of 5 rows exceeds the largest CUDA-graph bucket 4$"
    ):
        bucket_for(5, (1, 2, 4))
