"""Training entry points that are cheap enough for CI (the full runs are in the model card)."""

import json

import torch
from safetensors import safe_open

from genie_plugin.embedded import shapes


def test_oracle_only_retraining_writes_a_loadable_judge_with_its_provenance(tmp_path):
    import timm
    from safetensors.torch import load_file

    from genie_plugin.embedded.train import Log, TrainConfig, retrain_oracle

    cfg = TrainConfig(gen_images_per_class=4, clf_epochs=1)
    out = tmp_path / "oracle.safetensors"
    acc, per_class = retrain_oracle(
        out, cfg, Log(tmp_path / "log.jsonl"), torch.device("cpu"), heldout_per_class=2
    )
    assert out.is_file() and not list(tmp_path.glob("*.tmp"))  # atomic: temp file renamed
    assert set(per_class) == set(shapes.CLASSES) and 0.0 <= acc <= 1.0
    with safe_open(str(out), "pt") as fh:
        meta = fh.metadata()
    assert meta["num_classes"] == "32" and meta["train_images_per_class"] == "4"
    assert float(meta["heldout_acc"]) == round(acc, 4)
    assert json.loads(meta["heldout_per_class"]) == per_class
    with torch.random.fork_rng(devices=[]):  # init weights are overwritten below
        model = timm.create_model(meta["arch"], pretrained=False, num_classes=32)
    state = load_file(str(out))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    log = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert log[-1]["stage"] == "oracle" and log[-1]["oracle_heldout_acc"] == acc
