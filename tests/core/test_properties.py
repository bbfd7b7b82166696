"""Invariants of the pure math, fuzzed (hypothesis): schedule, plan, GeNIe-Ada rule, statistics."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genie_plugin.core.ada import select_ratio
from genie_plugin.core.plan import SchedulePlan
from genie_plugin.core.schedule import num_denoising_steps, start_index, thinned_indices
from genie_plugin.core.stats import mean_ci95
from genie_plugin.errors import ConfigError

ratios = st.floats(min_value=1e-3, max_value=1.0, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 200), ratios, ratios)
def test_more_noise_never_runs_fewer_steps(steps, r1, r2):
    lo, hi = sorted((r1, r2))
    try:
        n_lo = num_denoising_steps(steps, lo)
    except ConfigError:  # too little noise for any step: fine, says so
        return
    n_hi = num_denoising_steps(steps, hi)
    assert 1 <= n_lo <= n_hi <= steps
    assert start_index(steps, hi) <= start_index(steps, lo) == steps - n_lo


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 300), st.one_of(st.none(), st.integers(1, 300)))
def test_thinning_keeps_the_start_and_order(n, k):
    idx = thinned_indices(n, k)
    assert idx[0] == 0 and idx == sorted(set(idx)) and idx[-1] < n
    assert len(idx) == (n if k is None else min(n, k))


@settings(max_examples=200, deadline=None)
@given(
    st.integers(2, 60),
    st.lists(ratios, min_size=1, max_size=12),
    st.one_of(st.none(), st.integers(1, 10)),
    st.one_of(st.none(), st.floats(0, 999)),
)
def test_the_plan_counts_what_its_groups_run(steps, rs, cap, floor):
    ts = tuple(float(t) for t in np.linspace(999, 0, steps).round())
    plan = SchedulePlan(timesteps=ts, steps=steps, max_item_steps=cap, guidance_floor=floor)
    rs = [r for r in rs if int(steps * r) >= 1]  # others run no step (ConfigError)
    groups = plan.groups(rs)
    assert sorted(i for g in groups for i in g.items) == list(range(len(rs)))
    n_clock = max((g.join + len(g.timesteps) for g in groups), default=0)
    assert all(g.join + len(g.timesteps) == n_clock for g in groups)  # all finish together
    run = sum(len(g.timesteps) * len(g.items) for g in groups)
    assert plan.image_steps(rs) == run
    guided = sum(sum(plan.guided(t) for t in g.timesteps) * len(g.items) for g in groups)
    assert plan.unet_rows(rs) == run + guided


@settings(max_examples=300, deadline=None)
@given(
    st.integers(2, 8).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(st.floats(-1, 1), min_size=3 * n, max_size=3 * n),
            st.lists(st.floats(-1, 1), min_size=6, max_size=6),
        )
    )
)
def test_ada_picks_the_ratio_right_after_the_largest_jump(case):
    n, cand, sp = case
    rs = [round(0.1 * (i + 1), 2) for i in range(n)]
    e = np.asarray(cand, dtype=np.float64).reshape(n, 3)
    sel = select_ratio(rs, e, sp[:3], sp[3:])
    assert sel.ratio == rs[sel.index] and 1 <= sel.index < n
    assert sel.jumps[sel.index - 1] == max(sel.jumps)
    assert sel.jumps.index(max(sel.jumps)) == sel.index - 1  # ties: the first


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=50))
def test_ci_is_nonnegative_and_shrinks_with_copies(vals):
    mean, ci = mean_ci95(vals)
    assert min(vals) - 1e-12 <= mean <= max(vals) + 1e-12 and ci >= 0
    mean4, ci4 = mean_ci95(vals * 4)  # same spread, 4× the episodes: half the interval
    assert mean4 == pytest.approx(mean) and ci4 == pytest.approx(ci / 2, abs=1e-12)
    assert math.isfinite(ci)


def test_paired_interval_is_the_interval_of_the_differences():
    from genie_plugin.core.stats import paired_diff_ci95

    a, b = [0.9, 0.5, 0.7, 0.8], [0.6, 0.5, 0.4, 0.8]
    d, ci = paired_diff_ci95(a, b)
    diffs = np.subtract(a, b)
    assert d == pytest.approx(diffs.mean())
    assert ci == pytest.approx(1.96 * diffs.std() / 2)  # population std, √4 = 2
    assert paired_diff_ci95(b, a)[0] == pytest.approx(-d)  # order matters: a − b
    with pytest.raises(ValueError, match=r"equal lengths \(2 vs 3\)"):
        paired_diff_ci95([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="^no values$"):
        paired_diff_ci95([], [])
