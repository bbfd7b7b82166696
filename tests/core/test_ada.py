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
