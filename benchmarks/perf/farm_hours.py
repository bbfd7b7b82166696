"""Expected GPU-hours of generation per shipped scenario, from the committed H100 throughput.

Not a timing: UNet rows each scenario needs (counted with the sampler's own step rule,
``core.schedule.num_denoising_steps``, classifier-free guidance doubling every row) divided by
the UNet rows per second measured for GeNIe on an H100 (``generation_throughput_h100_*.json``,
SD 1.5 fp16, batch 64). What one strategy reuses of another's images is not counted twice:
GeNIe-Ada's r = 0.8 candidate is GeNIe's output, genie_ada_lite's full-step outputs are
GeNIe-Ada's candidates (its 5-step probes are new). VAE, text encoder and backbone time are
left out (under 5% of a GeNIe output at 512 px).

    python benchmarks/perf/farm_hours.py --out benchmarks/results/farm_hours_h100.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from genie_plugin.bench.scenario import SCENARIO_DIR  # noqa: E402
from genie_plugin.core.ada import ADA_RATIOS  # noqa: E402
from genie_plugin.core.schedule import num_denoising_steps  # noqa: E402
from genie_plugin.io import atomic_write_text  # noqa: E402

THROUGHPUT = (
    ROOT / "benchmarks" / "results" / "generation_throughput_h100_2026-11-24_outputs32.json"
)
LITE_PROBE_STEPS = 5  # genie_ada_lite's per-candidate cap (strategies/genie_ada.py)


def new_rows_per_output(steps: int, guided: bool) -> dict[str, int]:
    """UNet rows per generated output that no earlier strategy of the scenario already made."""
    cfg = 2 if guided else 1

    def rows(r: float, cap: int | None = None) -> int:
        n = num_denoising_steps(steps, r)
        return cfg * (min(n, cap) if cap else n)

    return {
        "text2image": rows(1.0),
        "img2img": rows(0.3),
        "img2img_high": rows(0.7),
        "genie": rows(0.8),
        "genie_ada": sum(rows(r) for r in ADA_RATIOS if r != 0.8),
        "genie_ada_lite": sum(rows(r, LITE_PROBE_STEPS) for r in ADA_RATIOS),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    tp = json.loads(THROUGHPUT.read_text())
    per_s = tp["results"]["genie"]["unet_image_steps_per_s"]
    out = {}
    for f in sorted(SCENARIO_DIR.glob("*.json")):
        scn = json.loads(f.read_text())
        if scn.get("model") is None or "embedded" in f.stem:
            continue
        steps, guided = scn.get("steps", 50), scn.get("guidance", 7.5) > 1
        per_output = new_rows_per_output(steps, guided)
        outputs = scn["ways"] * (scn["ways"] - 1) * scn["shots"]  # (N-1)*K per class
        strategies = [s for s in scn["strategies"] if s in per_output]
        rows = {s: per_output[s] * outputs * scn["episodes"] for s in strategies}
        out[f.stem] = {
            "episodes": scn["episodes"],
            "outputs_per_episode_per_strategy": outputs,
            "unet_rows": rows,
            "gpu_hours": {s: round(v / per_s / 3600, 2) for s, v in rows.items()},
            "gpu_hours_total": round(sum(rows.values()) / per_s / 3600, 1),
        }
    doc = {
        "what": __doc__.splitlines()[0],
        "throughput_file": str(THROUGHPUT.relative_to(ROOT)),
        "gpu": tp["gpu"],
        "unet_rows_per_s": per_s,
        "scenarios": out,
        "all_scenarios_gpu_hours": round(sum(v["gpu_hours_total"] for v in out.values()), 1),
    }
    atomic_write_text(args.out, json.dumps(doc, indent=1, sort_keys=True) + "\n")
    for name, v in out.items():
        print(f"{name:>18}: {v['gpu_hours_total']:7.1f} H100-hours")
    print(f"{'all':>18}: {doc['all_scenarios_gpu_hours']:7.1f}")


if __name__ == "__main__":
    main()
