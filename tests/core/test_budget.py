"""The generation budget over a plan: counts per class, a cap per task, nested subsets."""

import pytest
import torch

from genie_plugin.core.budget import apply_budget
from genie_plugin.errors import ConfigError
from genie_plugin.registry import REGISTRY
from genie_plugin.strategies.base import Episode, SupportItem


def _episode(ways=5, shots=2):
    support = tuple(SupportItem(f"c{c}-{k}", c) for c in range(ways) for k in range(shots))
    return Episode(dataset="d", index=3, class_names=tuple(f"class{c}" for c in range(ways)),
                   support=support, shots=shots, seed=7)  # fmt: skip


def _plan(name, ep):
    return REGISTRY.get(name).create().plan(ep, torch.Generator().manual_seed(0))


def _per_class(specs):
    out = {}
    for s in specs:
        out[s.label] = out.get(s.label, 0) + 1
    return out


@pytest.mark.parametrize("name", ["genie", "genie_ada", "text2image", "img2img"])
def test_counts_per_class_fewer_are_nested_subsets_more_are_new_copies(name):
    ep = _episode()
    specs = _plan(name, ep)
    assert _per_class(specs) == dict.fromkeys(range(5), 8)  # (N-1)·K = 4·2
    assert apply_budget(specs, ep) == specs
    three, five = (apply_budget(specs, ep, per_class=n) for n in (3, 5))
    assert _per_class(three) == dict.fromkeys(range(5), 3)
    assert {s.seed for s in three} <= {s.seed for s in five} <= {s.seed for s in specs}
    twenty = apply_budget(specs, ep, per_class=20)
    assert _per_class(twenty) == dict.fromkeys(range(5), 20)
    assert twenty[: len(specs)] == specs  # the plan itself, then further copies
    keys = [(s.label, s.source_id, s.copy) for s in twenty]
    assert len(set(keys)) == len(keys) and len({s.seed for s in twenty}) == len(twenty)
    for s in twenty[len(specs) :]:
        assert s.seed == ep.item_seed(s.label, s.source_id, s.copy) and s.copy > 0
    assert apply_budget(specs, ep, per_class=0) == []


def test_a_cap_per_task_spreads_evenly_over_classes():
    ep = _episode(ways=30, shots=1)
    specs = _plan("genie", ep)
    assert len(specs) == 30 * 29  # ProtoNet's 30-way training: 870 images per task
    for cap in (1, 29, 30, 100, 871):
        got = apply_budget(specs, ep, per_task=cap)
        counts = _per_class(got)
        assert len(got) == min(cap, 870)
        assert max(counts.values()) - min(counts.get(c, 0) for c in range(30)) <= 1
    both = apply_budget(specs, ep, per_class=4, per_task=60)
    assert len(both) == 60 and set(_per_class(both).values()) == {2}


@pytest.mark.parametrize("bad", [-1, 2.5, "3", True])
def test_bad_budgets_name_the_argument(bad):
    ep = _episode()
    with pytest.raises(ConfigError, match="per_class"):
        apply_budget(_plan("genie", ep), ep, per_class=bad)
    with pytest.raises(ConfigError, match="per_task"):
        apply_budget(_plan("genie", ep), ep, per_task=bad)
