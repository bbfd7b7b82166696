"""GeNIe's source choice (issue 31, *which sources*): the other classes nearest to or farthest
from the target by prototype similarity on the support set, at the reference count."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genie_plugin.core.affinity import class_affinity, ranked_classes
from genie_plugin.errors import ConfigError
from genie_plugin.registry import create_strategy
from genie_plugin.strategies.base import Episode, SupportItem
from genie_plugin.strategies.genie import GenieConfig

WAYS, SHOTS = 4, 2
# class prototypes on a circle: 0 and 1 close, 2 a quarter turn away, 3 opposite 0
ANGLES = (0.0, 0.3, 1.6, 3.1)


def _episode():
    support = tuple(SupportItem(f"c{c}_s{k}", c) for c in range(WAYS) for k in range(SHOTS))
    return Episode(dataset="toy", index=2, class_names=("a", "b", "c", "d"), support=support,
                   shots=SHOTS, seed=3)  # fmt: skip


def _features(ep):
    rows = []
    for it in ep.support:
        a = ANGLES[it.label] + (0.01 if it.item_id.endswith("s1") else 0.0)
        rows.append([np.cos(a), np.sin(a), 0.0])
    return np.array(rows)


def _embed_by_id(ep):
    feats = dict(zip([it.item_id for it in ep.support], _features(ep), strict=True))
    return lambda ims: np.stack([feats[im] for im in ims])  # "images" are their ids here


def test_affinity_ranks_classes_by_prototype_similarity_ties_by_index():
    ep = _episode()
    aff = class_affinity(_features(ep), [it.label for it in ep.support], WAYS)
    assert aff[0][0] == pytest.approx(1.0) and aff[0][1] == aff[1][0]
    assert ranked_classes(aff, 0, "nearest") == [1, 2, 3]
    assert ranked_classes(aff, 0, "farthest") == [3, 2, 1]
    assert ranked_classes(aff, 2, "all") == [0, 1, 3]
    tie = ((1.0, 0.5, 0.5), (0.5, 1.0, 0.2), (0.5, 0.2, 1.0))
    assert ranked_classes(tie, 0, "nearest") == [1, 2] == ranked_classes(tie, 0, "farthest")
    with pytest.raises(ConfigError, match="choose one of all, nearest, farthest"):
        ranked_classes(aff, 0, "closest")


@pytest.mark.parametrize(("mode", "expect"), [("nearest", {0: "b", 1: "a", 2: "b", 3: "c"}),
                                              ("farthest", {0: "d", 1: "d", 2: "a", 3: "a"})])  # fmt: skip
def test_plan_edits_only_the_chosen_class_at_the_reference_count_with_own_seeds(mode, expect):
    ep = _episode()
    s = create_strategy("genie", sources_by=mode)
    assert s.needs_affinity and not create_strategy("genie").needs_affinity
    ids = {it.item_id: it.item_id for it in ep.support}
    specs = s.plan_episode(ep, torch.Generator().manual_seed(0), ids, _embed_by_id(ep))
    reference = create_strategy("genie").plan(ep, torch.Generator().manual_seed(0))
    assert len(specs) == len(reference) == WAYS * (WAYS - 1) * SHOTS
    for c in range(WAYS):
        mine = [sp for sp in specs if sp.label == c]
        assert {sp.source_class for sp in mine} == {expect[c]}
        assert len({sp.seed for sp in mine}) == len(mine)  # repeats get their own seeds
    # the nearest class's own images are edited first: copy 0 of each keeps the x1 seed
    two = create_strategy("genie", sources_by=mode, source_classes=2, count=2)
    specs2 = two.plan_episode(ep, torch.Generator().manual_seed(0), ids, _embed_by_id(ep))
    assert len(specs2) == 2 * len(specs) and len({(sp.label, sp.seed) for sp in specs2}) == len(
        specs2
    )
    assert len({sp.source_class for sp in specs2 if sp.label == 0}) == 2


def test_source_choice_needs_a_backbone_and_checks_its_values():
    ep = _episode()
    s = create_strategy("genie", sources_by="nearest")
    with pytest.raises(ConfigError, match="give it a backbone"):
        s.plan_episode(ep, torch.Generator().manual_seed(0))
    with pytest.raises(ConfigError, match="backbone's view of the support set"):
        s.plan(ep, torch.Generator().manual_seed(0))
    with pytest.raises(ConfigError, match="sources_by = 'near'"):
        GenieConfig(sources_by="near")
    with pytest.raises(ConfigError, match="source_classes must be an integer >= 1"):
        GenieConfig(sources_by="nearest", source_classes=0)
    # defaults leave the recorded config (and so every existing row) unchanged
    assert GenieConfig().to_dict() == {"prompt": GenieConfig().prompt, "ratio": 0.8}
    assert GenieConfig(sources_by="farthest").to_dict()["source_classes"] == 1
