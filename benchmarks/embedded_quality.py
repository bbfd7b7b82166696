"""Measure the embedded model's quality figures with its oracle; write JSON and the model card.

    python benchmarks/embedded_quality.py [--t2i-per-class 25] [--pairs 200] [--steps 50]

Writes benchmarks/results/embedded_quality.json and genie_plugin/embedded/weights/MODEL_CARD.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genie_plugin.bench.env import environment  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--t2i-per-class", type=int, default=25)
    ap.add_argument("--i2i-per-class", type=int, default=10)
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--guidance", type=float, default=None, help="default: the model's")
    ap.add_argument("--timestep-shift", type=float, default=None, help="default: the model's")
    ap.add_argument("--device", default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/embedded_quality.json")
    ap.add_argument("--no-card", action="store_true")
    ap.add_argument(
        "--card-from",
        type=Path,
        nargs="+",
        help="render MODEL_CARD.md from these result JSONs (first = headline) and exit",
    )
    a = ap.parse_args()
    if a.card_from:
        from genie_plugin.embedded.card import write_model_card

        qs = [json.loads(p.read_text()) for p in a.card_from]
        print(write_model_card(qs[0], others=qs[1:]))
        return

    from rich.progress import Progress

    from genie_plugin.diffusion import load_generator
    from genie_plugin.embedded.assets import Oracle, load_embedded_backbone
    from genie_plugin.embedded.card import write_model_card
    from genie_plugin.embedded.evaluate import evaluate
    from genie_plugin.io import atomic_write_text

    given = {"guidance_scale": a.guidance, "timestep_shift": a.timestep_shift}
    gen = load_generator("embedded", device=a.device).with_sampler(
        steps=a.steps, **{k: v for k, v in given.items() if v is not None}
    )
    oracle = Oracle(device=a.device)
    embed = load_embedded_backbone(device=a.device)
    with Progress() as p:
        task = p.add_task("image-steps", total=None)
        res = evaluate(
            gen,
            oracle,
            embed,
            t2i_per_class=a.t2i_per_class,
            i2i_per_class=a.i2i_per_class,
            n_pairs=a.pairs,
            progress=lambda n: p.advance(task, n),
        )
    res["environment"] = environment()
    atomic_write_text(a.out, json.dumps(res, indent=2, sort_keys=True) + "\n")
    print(json.dumps({k: res[k] for k in ("text2image", "img2img")}, indent=2))
    g = res["genie"]
    print(
        {
            k: g[k]
            for k in (
                "labelled_target_at_default",
                "bg_dist_to_source_at_default",
                "bg_dist_to_text2image_at_default",
                "ada_within_one_step_of_flip",
            )
        }
    )
    print("mean P(target) by r:", [round(x, 3) for x in g["mean_p_target"]])
    if not a.no_card:
        print(write_model_card(res))


if __name__ == "__main__":
    main()
