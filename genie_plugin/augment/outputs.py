"""What ``genie augment`` does, as library functions: an ad-hoc episode, its outputs on disk."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from genie_plugin.errors import ConfigError
from genie_plugin.io import read_jsonl, save_png, write_jsonl
from genie_plugin.strategies.base import Episode, GeneratedImage, RenderContext, SupportItem

MANIFEST = "manifest.jsonl"


def cli_episode(
    strategy_name: str,
    source_ids: Sequence[str],
    target: str,
    *,
    source_class: str,
    target_ids: Sequence[str] = (),
    seed: int = 0,
    same_class: bool = False,
) -> Episode:
    """A two-class episode for ad-hoc use: class 0 is the target, class 1 the sources.

    With ``same_class`` (Img2Img) the sources *are* the target class. The budget (N-1)·K with
    K = number of sources gives one output per source for every strategy.
    """
    if not target.strip():
        raise ConfigError("--target must not be empty")
    if same_class:
        support = tuple(SupportItem(s, 0) for s in source_ids)
    else:
        support = tuple(SupportItem(s, 1) for s in source_ids)
        support += tuple(SupportItem(t, 0) for t in target_ids)
    return Episode(
        dataset="cli",
        index=0,
        class_names=(target, source_class),
        support=support,
        shots=max(1, len(source_ids)),
        seed=seed,
        targets=(0,),
    )


def run_strategy(
    strategy,
    episode: Episode,
    ctx: RenderContext,
    *,
    plan_seed: int = 0,
) -> list[GeneratedImage]:
    specs = strategy.plan(episode, torch.Generator("cpu").manual_seed(plan_seed))
    return strategy.render(specs, ctx) if specs else []


def output_name(i: int, rec: dict) -> str:
    def slug(text: str) -> str:
        keep = "".join(ch if ch.isalnum() else "-" for ch in str(text).lower())
        return "-".join(p for p in keep.split("-") if p)[:40] or "x"

    src = Path(rec["source_id"]).stem if rec.get("source_id") else "noise"
    r = rec.get("ratio")
    rtxt = f"_r{r:.2f}" if isinstance(r, float) else ""
    return f"{i:04d}_{rec['strategy']}_{slug(src)}_to_{slug(rec['target_class'])}{rtxt}_c{rec['copy']}.png"


def write_outputs(out_dir: Path, results: Sequence[GeneratedImage]) -> list[Path]:
    """Write PNGs atomically, then append their records to ``manifest.jsonl`` (rewritten atomically).

    Existing outputs and manifest rows are kept; new files never overwrite old ones.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / MANIFEST
    old = read_jsonl(manifest) if manifest.exists() else []
    start = len(old)
    paths, records = [], []
    for k, res in enumerate(results):
        name = output_name(start + k, res.record)
        path = save_png(res.image, out_dir / name)
        paths.append(path)
        records.append({**res.record, "image": name})
    write_jsonl(manifest, [*old, *records])
    return paths
