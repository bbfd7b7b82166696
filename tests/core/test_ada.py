import numpy as np
import pytest

from genie_plugin.core.ada import ADA_RATIOS, select_ratio
from genie_plugin.errors import ConfigError


def _curve(values):
    """Embeddings whose projection on v = e_x is exactly ``values``."""
    return np.array([[v, 0.0] for v in values])


SRC, PROTO = np.array([0.0, 0.0]), np.array([2.0, 0.0])


def test_jump_between_07_and_08_selects_08():
    sel = select_ratio(ADA_RATIOS, _curve([0.0, 0.05, 0.1, 0.9, 0.95]), SRC, PROTO)
    assert sel.ratio == 0.8
    assert sel.index == 3
    np.testing.assert_allclose(sel.jumps, [0.05, 0.05, 0.8, 0.05])
    assert not sel.flat


def test_first_jump_selects_06_and_last_selects_09():
    assert select_ratio(ADA_RATIOS, _curve([0, 1, 1.1, 1.2, 1.3]), SRC, PROTO).ratio == 0.6
    assert select_ratio(ADA_RATIOS, _curve([0, 0.1, 0.2, 0.3, 1.3]), SRC, PROTO).ratio == 0.9


def test_jump_is_absolute_value():
    sel = select_ratio(ADA_RATIOS, _curve([1.0, 0.9, 0.1, 0.0, -0.1]), SRC, PROTO)
    assert sel.ratio == 0.7


def test_tie_goes_to_first_jump_like_numpy_argmax():
    sel = select_ratio(ADA_RATIOS, _curve([0.0, 0.5, 0.5, 1.0, 1.0]), SRC, PROTO)
    assert sel.ratio == 0.6


def test_flat_curve_is_flagged_and_picks_first_as_reference():
    sel = select_ratio(ADA_RATIOS, _curve([0.3] * 5), SRC, PROTO)
    assert sel.flat and sel.ratio == 0.6


def test_orthogonal_component_is_ignored_and_norm_of_v_divides():
    e = np.array([[0, 5], [0, -5], [1, 7], [1, 0], [1, 3]], dtype=float)
    sel = select_ratio(ADA_RATIOS, e, SRC, np.array([4.0, 0.0]))
    assert sel.ratio == 0.7
    np.testing.assert_allclose(sel.projections, [0, 0, 1, 1, 1])


def test_source_on_prototype_gives_flat_curve():
    sel = select_ratio(ADA_RATIOS, _curve([0, 1, 2, 3, 4]), PROTO, PROTO)
    assert sel.flat


def test_bad_inputs():
    with pytest.raises(ConfigError):
        select_ratio((0.5,), _curve([0]), SRC, PROTO)
    with pytest.raises(ConfigError):
        select_ratio((0.6, 0.5), _curve([0, 1]), SRC, PROTO)
    with pytest.raises(ConfigError):
        select_ratio(ADA_RATIOS, _curve([0, 1]), SRC, PROTO)


def test_unit_rows_scales_each_row_and_leaves_zero_rows_zero():
    from genie_plugin.core.ada import unit_rows

    x = unit_rows([[3.0, 4.0], [0.0, 0.0], [0.0, -2.0], [0.03, 0.04]])
    np.testing.assert_allclose(x, [[0.6, 0.8], [0.0, 0.0], [0.0, -1.0], [0.6, 0.8]])
    assert x.dtype == np.float64
    assert unit_rows(np.ones((2, 3), dtype=np.float32)).dtype == np.float64
    np.testing.assert_allclose(
        unit_rows(np.array([5.0, 12.0], dtype=np.float32)), [5 / 13, 12 / 13]
    )


def test_select_from_rows_uses_the_mean_prototype():
    from genie_plugin.core.ada import select_from_rows

    src = np.array([1.0, 0.0])
    protos = np.array([[0.0, 1.0], [0.0, 3.0]])  # mean (0, 2): v = (-1, 2)
    cands = np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.0, 1.1], [0.0, 1.2]])
    sel = select_from_rows(ADA_RATIOS, cands, src, protos)
    ref = select_ratio(ADA_RATIOS, cands, src, protos.mean(0))
    assert sel == ref and sel.ratio == 0.7
    # the first prototype alone would give another curve: the mean is what counts
    assert select_from_rows(ADA_RATIOS, cands, src, protos[:1]).projections != sel.projections
    for bad in (np.zeros((0, 2)), np.zeros(2)):
        with pytest.raises(ConfigError, match="at least one prototype"):
            select_from_rows(ADA_RATIOS, cands, src, bad)


def test_selection_record_keeps_the_whole_curve():
    sel = select_ratio(ADA_RATIOS, np.eye(5)[:, :2].cumsum(0), np.zeros(2), np.ones(2))
    d = sel.to_dict()
    assert d == {
        "ratios": list(ADA_RATIOS),
        "projections": list(sel.projections),
        "jumps": list(sel.jumps),
        "r_star": sel.ratio,
        "index": sel.index,
        "flat": sel.flat,
    }
    assert ADA_RATIOS[d["index"]] == d["r_star"] and len(d["jumps"]) == len(ADA_RATIOS) - 1


def test_direction_is_prototype_minus_source():
    """Only v = prototype − source picks index 1 here; prototype + source would pick 2."""
    src, proto = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    steps = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.5], [0.0, 0.2]])
    cands = np.vstack([np.zeros(2), steps.cumsum(0)])
    assert select_ratio(ADA_RATIOS, cands, src, proto).index == 1


def test_checks_and_their_messages():
    e = np.zeros((3, 2))
    with pytest.raises(ConfigError, match="^GeNIe-Ada needs at least two ratios$"):
        select_ratio([0.5], e[:1], np.zeros(2), np.ones(2))
    with pytest.raises(
        ConfigError, match=r"^GeNIe-Ada ratios must be strictly increasing, got \[0.5, 0.5, 0.6\]$"
    ):
        select_ratio([0.5, 0.5, 0.6], e, np.zeros(2), np.ones(2))
    with pytest.raises(
        ConfigError, match=r"^expected 3 candidate embeddings, got array of shape \(2, 2\)$"
    ):
        select_ratio([0.5, 0.6, 0.7], e[:2], np.zeros(2), np.ones(2))
    from genie_plugin.core.ada import select_from_rows

    with pytest.raises(ConfigError, match="^GeNIe-Ada needs at least one prototype embedding$"):
        select_from_rows([0.5, 0.6], e[:2], np.zeros(2), np.zeros((0, 2)))


@pytest.mark.parametrize("second", [1.5, 1 + 1e-6, 1 + 1e-10])
def test_flat_means_equal_jumps_to_1e_12(second):
    cands = np.array([[0.0], [1.0], [1.0 + second]])
    assert not select_ratio([0.5, 0.6, 0.7], cands, np.zeros(1), np.ones(1)).flat
    same = np.array([[0.0], [1.0], [2.0]])
    assert select_ratio([0.5, 0.6, 0.7], same, np.zeros(1), np.ones(1)).flat


def test_the_rule_runs_in_float64_whatever_the_input_dtype():
    from genie_plugin.core.ada import select_from_rows

    rng = np.random.default_rng(0)
    cands, src = rng.normal(size=(5, 8)), rng.normal(size=8)
    protos = rng.normal(size=(3, 8))
    c32, s32, p32 = (a.astype(np.float32) for a in (cands, src, protos))
    want = select_ratio(ADA_RATIOS, c32.astype(np.float64), s32.astype(np.float64),
                        p32.astype(np.float64).mean(0))  # fmt: skip
    assert select_from_rows(ADA_RATIOS, c32, s32, p32).projections == want.projections
    got = select_ratio(ADA_RATIOS, c32, s32, p32.astype(np.float64).mean(0).astype(np.float32))
    ref = select_ratio(ADA_RATIOS, c32.astype(np.float64), s32.astype(np.float64),
                       p32.astype(np.float64).mean(0).astype(np.float32).astype(np.float64))  # fmt: skip
    assert got.projections == ref.projections


def test_exact_sums_are_correctly_rounded_whatever_the_order():
    """The decisions' sums must not depend on a BLAS kernel's order or width: exact_dot is the
    correctly rounded sum of the (IEEE-rounded, hence CPU-independent) products, so any
    permutation gives the same bits (a pairwise/FMA numpy dot of the same data may not)."""
    from fractions import Fraction

    from genie_plugin.core.ada import exact_dot, exact_mean_rows

    rng = np.random.default_rng(7)
    a = rng.standard_normal(257) * 10.0 ** rng.integers(-8, 8, 257)
    b = rng.standard_normal(257)
    exact = float(sum(Fraction(x * y) for x, y in zip(a.tolist(), b.tolist(), strict=True)))
    assert exact_dot(a, b) == exact
    perm = rng.permutation(257)
    assert exact_dot(a[perm], b[perm]) == exact
    rows = rng.standard_normal((5, 33))
    m = exact_mean_rows(rows)
    assert np.array_equal(m, exact_mean_rows(rows[::-1]))
    assert m[0] == float(sum(Fraction(x) for x in rows[:, 0].tolist()) / 5)
