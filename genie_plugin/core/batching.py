"""Batch-size arithmetic for the sampler (no I/O): memory-aware ``--max-batch auto`` and the
padding buckets that let a captured CUDA graph serve every batch size a loop produces."""

from __future__ import annotations

from genie_plugin.errors import ConfigError


def auto_max_batch(
    free_bytes: int,
    bytes_per_item: float,
    *,
    headroom: float = 0.8,
    cap: int = 256,
    multiple: int = 8,
) -> int:
    """Largest item count whose activations fit ``headroom`` of the free memory.

    ``bytes_per_item`` is the measured peak growth per sampler item (one item is two UNet rows
    with classifier-free guidance). Rounded down to ``multiple`` (tensor-core friendly), at least 1,
    at most ``cap`` (beyond a few hundred items a GPU is saturated and latency only grows).
    """
    if bytes_per_item <= 0:
        raise ConfigError(f"bytes_per_item must be > 0, got {bytes_per_item}")
    if not 0 < headroom <= 1:
        raise ConfigError(f"headroom must be in (0, 1], got {headroom}")
    n = int(free_bytes * headroom // bytes_per_item)
    if n >= multiple:
        n -= n % multiple
    return max(1, min(n, cap))


def graph_buckets(max_rows: int) -> tuple[int, ...]:
    """Row counts that get their own CUDA graph: powers of two up to ``max_rows`` (inclusive).

    A loop whose batch grows as items join (GeNIe-Ada) is padded to the next bucket, so at most
    log2(max_rows) + 1 graphs are captured and padding never costs more than 2× a step.
    """
    if max_rows < 1:
        raise ConfigError(f"max_rows must be >= 1, got {max_rows}")
    out, b = [], 1
    while b < max_rows:
        out.append(b)
        b *= 2
    out.append(max_rows)
    return tuple(out)


def bucket_for(n: int, buckets: tuple[int, ...]) -> int:
    """Smallest bucket holding ``n`` rows."""
    for b in buckets:
        if n <= b:
            return b
    raise ConfigError(f"batch of {n} rows exceeds the largest CUDA-graph bucket {buckets[-1]}")
