"""GeNIe-Ada noise-ratio selection (paper §3.2; rule as in the reference code).

For a (source s, target class c) pair the candidates e_r (L2-normalised backbone embeddings of
the outputs generated at each r with one shared ε) are projected on v = prototype(c) − e(s).
The class "flips" where the projection jumps most; r* is the ratio right *after* that jump:
d_i = |<e_{r_i} − e_{r_{i+1}}, v>| / ||v||, r* = r_{argmax d + 1}.

Every sum here is exactly rounded (``math.fsum`` over elementwise products, each of which IEEE
arithmetic rounds the same on every CPU), never a BLAS dot or a SIMD reduction: r* is an argmax,
so a last-bit difference between OpenBLAS kernels (Haswell vs SkylakeX, chosen by the CPU found)
would pick another image and change the board (measured: one episode of 20 on an AVX-512 CPU).
The inputs (backbone features) come from torch, whose kernels the leaderboard check pins.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from genie_plugin.errors import ConfigError


def exact_dot(a, b) -> float:
    """<a, b> of two float64 vectors: the exactly rounded sum of the elementwise products
    (each IEEE-rounded, no FMA), so the same bits on every CPU and in any order."""
    return math.fsum(np.multiply(a, b, dtype=np.float64).tolist())


def exact_norm(x) -> float:
    """||x||₂ from an exactly rounded sum of squares (``np.linalg.norm`` calls BLAS)."""
    return math.sqrt(exact_dot(x, x))


def exact_mean_rows(x) -> np.ndarray:
    """Column means of a 2-D float64 array, each an exactly rounded sum divided by the count."""
    x = np.asarray(x, dtype=np.float64)
    return np.array([math.fsum(col) / len(x) for col in x.T.tolist()], dtype=np.float64)


def unit_rows(x) -> np.ndarray:
    """Rows scaled to unit L2 norm (float64), as the rule's embeddings are; norms exactly
    rounded, so the rows are the same bits on every CPU."""
    x = np.asarray(x, dtype=np.float64)
    flat = x.reshape(-1, x.shape[-1])
    norms = np.array([exact_norm(row) for row in flat], dtype=np.float64)
    return x / np.maximum(norms.reshape((*x.shape[:-1], 1)), 1e-12)


#: The reference grid (paper §3.2).
ADA_RATIOS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class AdaSelection:
    """Result of the selection: the chosen ratio and the whole curve (for the manifest/plots)."""

    ratios: tuple[float, ...]
    projections: tuple[float, ...]  # <e_r, v>/||v|| for each r
    jumps: tuple[float, ...]  # |projection_i - projection_{i+1}|
    index: int  # index of r* into ``ratios``
    ratio: float  # r*
    flat: bool  # all jumps equal: no flip detected, reference argmax picks the first

    def to_dict(self) -> dict:
        return {
            "ratios": list(self.ratios),
            "projections": list(self.projections),
            "jumps": list(self.jumps),
            "r_star": self.ratio,
            "index": self.index,
            "flat": self.flat,
        }


def select_ratio(
    ratios: Sequence[float],
    candidate_embeddings: np.ndarray,
    source_embedding: np.ndarray,
    prototype: np.ndarray,
) -> AdaSelection:
    """Pick r* from candidate embeddings (one row per ratio, ratios ascending).

    Ties go to the first (smallest-r) jump, as ``np.argmax`` does in the reference code.
    """
    r = tuple(float(x) for x in ratios)
    e = np.asarray(candidate_embeddings, dtype=np.float64)
    if len(r) < 2:
        raise ConfigError("GeNIe-Ada needs at least two ratios")
    if any(b <= a for a, b in zip(r, r[1:], strict=False)):
        raise ConfigError(f"GeNIe-Ada ratios must be strictly increasing, got {list(r)}")
    if e.ndim != 2 or e.shape[0] != len(r):
        raise ConfigError(f"expected {len(r)} candidate embeddings, got array of shape {e.shape}")
    v = np.asarray(prototype, dtype=np.float64) - np.asarray(source_embedding, dtype=np.float64)
    norm = exact_norm(v) if np.all(np.isfinite(v)) else math.inf
    if norm == 0.0 or not math.isfinite(norm):
        # Source already sits on the prototype: every direction is flat.
        proj = np.zeros(len(r))
    else:
        proj = np.array([exact_dot(row, v) / norm for row in e], dtype=np.float64)
    jumps = np.abs(np.diff(proj))
    i = int(np.argmax(jumps))
    flat = bool(np.allclose(jumps, jumps[0], rtol=0.0, atol=1e-12))
    return AdaSelection(
        ratios=r,
        projections=tuple(float(p) for p in proj),
        jumps=tuple(float(j) for j in jumps),
        index=i + 1,
        ratio=r[i + 1],
        flat=flat,
    )


def select_from_rows(
    ratios: Sequence[float],
    candidate_rows: np.ndarray,
    source_row: np.ndarray,
    prototype_rows: np.ndarray,
) -> AdaSelection:
    """:func:`select_ratio` with the prototype the mean of ``prototype_rows`` (all rows
    unit-normalised, see :func:`unit_rows`): what GeNIe-Ada and ``genie sweep`` both score."""
    proto_rows = np.asarray(prototype_rows, dtype=np.float64)
    if proto_rows.ndim != 2 or len(proto_rows) == 0:
        raise ConfigError("GeNIe-Ada needs at least one prototype embedding")
    return select_ratio(ratios, candidate_rows, source_row, exact_mean_rows(proto_rows))


#: A curve is *flat* when its largest jump is under this many times the mean of the others:
#: no ratio stands out as where the class flips, so r* is close to arbitrary.
FLAT_JUMP_RATIO = 1.5


def is_flat(jumps: Sequence[float], ratio: float = FLAT_JUMP_RATIO) -> bool:
    """Whether a selection curve has no jump that stands out (see :data:`FLAT_JUMP_RATIO`)."""
    js = sorted(float(j) for j in jumps)
    if len(js) < 2:
        return True
    rest = math.fsum(js[:-1]) / (len(js) - 1)
    return js[-1] < ratio * rest
