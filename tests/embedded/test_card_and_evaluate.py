"""The embedded model's quality tooling: the evaluation behind its figures and the model card
written from them (``benchmarks/embedded_quality.py``)."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from genie_plugin.embedded import shapes
from genie_plugin.embedded.assets import weights_dir
from genie_plugin.embedded.card import write_model_card

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
# the files and order of the committed card's settings table (docs/embedded.md gives the command)
CARD_FROM = [
    "embedded_quality.json",
    "embedded_quality_no_interval.json",
    "embedded_quality_oracle_v1.json",
    "embedded_quality_cfg3_noshift.json",
    "embedded_quality_cfg7.5_noshift.json",
]


def _card_folder(tmp_path) -> Path:
    """The shipped weights seen through links, so the card is written beside them in tmp_path."""
    for name in ("model", "train_config.json", "backbone.safetensors", "oracle.safetensors"):
        os.symlink(weights_dir() / name, tmp_path / name)
    return tmp_path


def test_committed_model_card_is_what_the_generator_writes(tmp_path):
    """Nobody edits the card by hand: the committed one is rendered from the committed results."""
    qs = [json.loads((RESULTS / name).read_text()) for name in CARD_FROM]
    card = write_model_card(qs[0], folder=_card_folder(tmp_path), others=qs[1:])
    assert card == tmp_path / "MODEL_CARD.md"
    assert card.read_text() == (weights_dir() / "MODEL_CARD.md").read_text()


def test_model_card_states_the_figures_it_is_given(tmp_path):
    q = json.loads((RESULTS / CARD_FROM[0]).read_text())
    q["text2image"] = {**q["text2image"], "accuracy": 0.123, "n": 7}
    text = write_model_card(q, folder=_card_folder(tmp_path)).read_text()
    assert "7 images: oracle accuracy **12.3%**" in text
    assert "| 12.3% |" in text  # and in its row of the settings table


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_small_evaluation_is_consistent(tmp_path):
    """evaluate() on a CI-sized sample: counts match what was asked, rates are rates, and the
    summary figures agree with the per-ratio tables they are read from."""
    from genie_plugin.core.schedule import num_denoising_steps
    from genie_plugin.diffusion import load_generator
    from genie_plugin.embedded.assets import Oracle, load_embedded_backbone
    from genie_plugin.embedded.evaluate import SWEEP, evaluate

    gen = load_generator("embedded", device="cpu").with_sampler(steps=10)
    done = []
    res = evaluate(
        gen,
        Oracle(device="cpu"),
        load_embedded_backbone(device="cpu"),
        t2i_per_class=1,
        i2i_per_class=1,
        n_pairs=3,
        progress=done.append,
    )
    n_cls = len(shapes.CLASSES)
    t2i, i2i, g = res["text2image"], res["img2img"], res["genie"]
    assert res["sampler"]["steps"] == 10 and res["model"] == gen.fingerprint
    assert t2i["n"] == n_cls and i2i["n"] == n_cls and g["n_pairs"] == 3
    # progress counts image-steps: every denoising step of every image, once
    steps = n_cls * (10 + num_denoising_steps(10, 0.3)) + 3 * sum(
        num_denoising_steps(10, r) for r in SWEEP
    )
    assert sum(done) == steps
    # overall accuracy is the class-weighted mean of the per-split accuracies (1 image per class)
    per_split = sum(t2i[f"accuracy_{s}"] * len(names) for s, names in shapes.SPLITS.items())
    assert t2i["accuracy"] == pytest.approx(per_split / n_cls)
    for rate in (t2i["accuracy"], i2i["keep_rate"], i2i["oracle_accuracy_on_sources"]):
        assert 0.0 <= rate <= 1.0
    assert i2i["ratio"] == 0.3
    assert g["ratios"] == list(SWEEP)
    for key in ("mean_p_target", "mean_p_source", "frac_labelled_target", "frac_labelled_source"):
        assert len(g[key]) == len(SWEEP) and all(0.0 <= x <= 1.0 for x in g[key])
    # labelled B and labelled A exclude each other
    assert all(
        b + a <= 1.0 + 1e-9
        for b, a in zip(g["frac_labelled_target"], g["frac_labelled_source"], strict=True)
    )
    j = SWEEP.index(g["default_ratio"])
    assert g["labelled_target_at_default"] == g["frac_labelled_target"][j]
    assert sum(g["ada_r_star_hist"].values()) == 3 == sum(g["oracle_flip_hist"].values())
    assert "0.5" not in {k for k, v in g["ada_r_star_hist"].items() if v}  # never the first r
    assert np.isfinite(
        [g["bg_dist_to_source_at_default"], g["bg_dist_to_text2image_at_default"]]
    ).all()
    # the card renders from a fresh evaluation, with its figures
    text = write_model_card(res, folder=_card_folder(tmp_path)).read_text()
    assert f"{n_cls} images: oracle accuracy **{t2i['accuracy']:.1%}**" in text
