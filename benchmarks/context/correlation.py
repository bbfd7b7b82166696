"""The class–context experiment (issue 17): does GeNIe's ordering appear where context predicts
the class? Trains the experiment's backbone once (``--train``), then measures what the frozen
backbones encode: linear probes (5-fold, logistic regression on the novel split's features) for
the class and for the background hue, on ``shapes`` (context independent of the class) and
``shapes-ctx`` (80% of a class's images on its class's hue). Writes JSON with the figures and the
environment. The boards themselves are ``genie bench run benchmarks/context/*.json``.

    python benchmarks/context/correlation.py [--train] [--out FILE]
"""

from __future__ import annotations

import argparse
import colorsys
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from genie_plugin.bench.env import environment  # noqa: E402
from genie_plugin.io import atomic_write_text  # noqa: E402

HUE_BINS = 8


def train(log_path: Path) -> dict:
    from genie_plugin.embedded.assets import weights_dir
    from genie_plugin.embedded.dataset import CONTEXT_RHO
    from genie_plugin.embedded.training.classifiers import train_context_backbone
    from genie_plugin.embedded.training.common import Log, TrainConfig

    out = weights_dir() / "backbone_ctx.safetensors"
    t0 = time.perf_counter()
    acc = train_context_backbone(out, TrainConfig(), Log(log_path), "cpu", CONTEXT_RHO)
    return {"train_acc": acc, "wall_s": round(time.perf_counter() - t0, 1), "file": out.name}


def _hue_bin(p) -> int:
    m = [(a + b) / 2 / 255 for a, b in zip(p.bg0, p.bg1, strict=True)]
    return int(colorsys.rgb_to_hsv(*m)[0] * HUE_BINS) % HUE_BINS


def probes(backbone: str, rho: float) -> dict:
    import numpy as np
    from PIL import Image
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    from genie_plugin.embedded import shapes
    from genie_plugin.fewshot.backbones import load_backbone

    emb = load_backbone(backbone, device="cpu")
    feats, cls, hue, typical = [], [], [], []
    for c, name in enumerate(shapes.SPLITS["novel"]):
        x, params = shapes.generate_class(name, 120, context_rho=rho)
        feats.append(emb([Image.fromarray(i) for i in x]))
        cls += [c] * len(x)
        hue += [_hue_bin(p) for p in params]
        typical += [shapes.is_typical_context(name, p) for p in params]
    X = np.concatenate(feats)
    out = {"images": len(X), "typical_context_share": round(float(np.mean(typical)), 3)}
    for what, y in (("class", cls), ("background_hue", hue)):
        y = np.asarray(y)
        acc = cross_val_score(LogisticRegression(max_iter=3000), X, y, cv=5).mean()
        out[f"probe_{what}"] = round(float(acc), 4)
        out[f"majority_{what}"] = round(float(np.bincount(y).max() / len(y)), 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", action="store_true", help="train the embedded-ctx backbone")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/context_probe.json")
    a = ap.parse_args()
    from genie_plugin.embedded.dataset import CONTEXT_RHO

    res: dict = {"context_rho": CONTEXT_RHO, "hue_bins": HUE_BINS}
    if a.train:
        res["training"] = train(
            ROOT / "benchmarks/results/embedded_training/backbone_ctx_log.jsonl"
        )
    res["probes"] = {
        f"{bb} on {ds}": probes(bb, rho)
        for bb in ("embedded", "embedded-ctx")
        for ds, rho in (("shapes", 0.0), ("shapes-ctx", CONTEXT_RHO))
    }
    res["environment"] = environment()
    atomic_write_text(a.out, json.dumps(res, indent=1, sort_keys=True) + "\n")
    print(json.dumps(res["probes"], indent=1))


if __name__ == "__main__":
    main()
