"""The class–context experiment's parts: the embedded-ctx backbone encodes the background (the
shipped backbone does not), and its two scenarios are valid runs."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genie_plugin.embedded import shapes

ROOT = Path(__file__).resolve().parents[2]


def _hue_probe(backbone: str) -> float:
    """5-fold linear-probe accuracy for the background hue (4 bins) of independent-context
    images: how much of the background a frozen backbone's features carry."""
    import colorsys

    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    from genie_plugin.fewshot.backbones import load_backbone

    emb = load_backbone(backbone, device="cpu")
    feats, hue = [], []
    for name in shapes.SPLITS["novel"]:
        x, params = shapes.generate_class(name, 40, seed=3)
        feats.append(emb([Image.fromarray(i) for i in x]))
        for p in params:
            m = [(a + b) / 2 / 255 for a, b in zip(p.bg0, p.bg1, strict=True)]
            hue.append(int(colorsys.rgb_to_hsv(*m)[0] * 4) % 4)
    y = np.asarray(hue)
    return cross_val_score(LogisticRegression(max_iter=3000), np.concatenate(feats), y, cv=5).mean()


def test_context_backbone_encodes_the_background_the_shipped_one_ignores():
    chance = 0.25
    assert _hue_probe("embedded") < chance + 0.1  # colour-scrambled training: hue ignored
    assert _hue_probe("embedded-ctx") > chance + 0.3  # trained where the hue predicts


@pytest.mark.parametrize("name", ["ctx-5w1s", "ctx-control-5w1s"])
def test_the_experiment_scenarios_are_valid_runs(name):
    from genie_plugin.bench.scenario import Scenario, preflight

    scn = Scenario.load(ROOT / "benchmarks" / "context" / f"{name}.json")
    preflight(scn)
    assert scn.backbone == "embedded-ctx" and scn.model == "embedded"
    assert scn.dataset == ("shapes-ctx" if name == "ctx-5w1s" else "shapes")
    # both conditions differ only in the dataset: same episodes' settings, same generator
    other = Scenario.load(
        ROOT
        / "benchmarks"
        / "context"
        / ("ctx-control-5w1s.json" if name == "ctx-5w1s" else "ctx-5w1s.json")
    )
    a, b = scn.to_dict(), other.to_dict()
    assert {k for k in a if a[k] != b[k]} == {"name", "dataset"}
