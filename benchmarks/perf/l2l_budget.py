"""Per-task cost of ProtoNet's default 30-way training tasks with and without a generation
budget (issue: learn2learn's own examples), first pass and cached.

learn2learn's ``protonet_miniimagenet.py`` trains on 30-way tasks of shot 1 + 15 queries: a
generative strategy's (N−1)·K budget is 29 images per class, 870 per task. This builds real-
format miniImageNet stand-ins (the 64 train WordNet ids, random pixels, 32 images per class),
draws the same tasks with ``per_task`` = none and a cap, and records seconds per task and the
process's peak RSS, cold cache then warm. Writes JSON with the environment::

    python benchmarks/perf/l2l_budget.py --out benchmarks/results/l2l_budget_<date>.json
"""

from __future__ import annotations

import argparse
import json
import pickle
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _stand_ins(root: Path, per_class: int) -> None:
    splits = json.loads(
        (Path(__file__).resolve().parents[2] / "genie_plugin/data/splits/mini_imagenet.json")
        .read_text()
    )["splits"]  # fmt: skip
    rng = np.random.default_rng(0)
    for split, wnids in splits.items():
        x = rng.integers(0, 256, (per_class * len(wnids), 84, 84, 3), dtype=np.uint8)
        cd = {w: list(range(k * per_class, (k + 1) * per_class)) for k, w in enumerate(wnids)}
        with open(root / f"mini-imagenet-cache-{split}.pkl", "wb") as fh:
            pickle.dump({"image_data": x, "class_dict": cd}, fh)


def _measure(root: Path, cache: Path, per_task, tasks: int) -> dict:
    import warnings

    from genie_plugin.l2l.plugin import get_tasksets

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the embedded model on miniImageNet: a rehearsal
        ts = get_tasksets(
            "mini-imagenet", train_ways=30, train_samples=16, test_ways=5, test_samples=16,
            root=str(root), strategy={"train": "genie"}, shots=1, model="embedded",
            num_tasks={"train": tasks}, per_task={"train": per_task}, cache_dir=cache,
            device="cpu",
        )  # fmt: skip
    out = {"per_task": per_task, "generated_per_task": ts.train.generated_per_task}
    for phase in ("first_pass", "cached"):
        t0 = time.perf_counter()
        for i in range(tasks):
            task = ts.train[i]
        out[phase] = {
            "s_per_task": round((time.perf_counter() - t0) / tasks, 2),
            "images_per_task": len(task.generated_y),
            "peak_rss_mb": round(_rss_mb()),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=2)
    ap.add_argument("--per-class-images", type=int, default=32)
    ap.add_argument("--cap", type=int, default=60, help="per_task cap to compare with none")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    import torch

    import genie_plugin

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "mini"
        root.mkdir()
        _stand_ins(root, a.per_class_images)
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        runs = []
        for cap in (None, a.cap):  # each in its own process: its own peak memory
            with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
                runs.append(
                    pool.submit(_measure, root, Path(tmp) / f"c{cap}", cap, a.tasks).result()
                )
    doc = {
        "what": "ProtoNet's default 30-way 1-shot 15-query training tasks, genie strategy, "
        "embedded model, miniImageNet stand-ins; per task, first pass (cold cache) and cached",
        "runs": runs,
        "tasks": a.tasks,
        "note": "peak RSS: the high-water mark of the process that ran that configuration",
        "env": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "genie_fewshot": genie_plugin.__version__,
            "platform": platform.platform(),
            "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
        },  # fmt: skip
    }
    from genie_plugin.io import atomic_write_text

    atomic_write_text(a.out, json.dumps(doc, indent=2) + "\n")
    print(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
