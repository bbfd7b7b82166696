"""What ``genie augment`` does, as library functions: an ad-hoc episode, its outputs on disk."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import torch

from genie_plugin.errors import ConfigError
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
    from genie_plugin.strategies.base import FitContext

    fit = FitContext.of(strategy, ctx.model)  # a peer fits first (no shared store here)
    specs = strategy.plan_episode(
        episode, torch.Generator("cpu").manual_seed(plan_seed), ctx.images, ctx.embed, fit
    )
    return strategy.render(specs, ctx) if specs else []


def output_name(i: int, rec: dict) -> str:
    def slug(text: str) -> str:
        keep = "".join(ch if ch.isalnum() else "-" for ch in str(text).lower())
        return "-".join(p for p in keep.split("-") if p)[:40] or "x"

    src = Path(rec["source_id"]).stem if rec.get("source_id") else "noise"
    r = rec.get("ratio")
    rtxt = f"_r{r:.2f}" if isinstance(r, float) else ""
    return f"{i:04d}_{rec['strategy']}_{slug(src)}_to_{slug(rec['target_class'])}{rtxt}_c{rec['copy']}.png"


def check_manifest(out_dir: Path) -> None:
    """Before generating: an existing ``manifest.jsonl`` in ``out_dir`` is whole JSON lines
    (a torn or edited line is named, so no images are made only to be left unrecorded)."""
    import json

    from genie_plugin.sinks import one_line

    manifest = Path(out_dir) / MANIFEST
    if not manifest.exists():
        return
    if not manifest.is_file():
        raise ConfigError(f"{one_line(manifest)}: is not a regular file; remove it or choose --out")
    for n, raw in enumerate(manifest.read_bytes().split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            rec = None
        if not isinstance(rec, dict):
            raise ConfigError(
                f"{one_line(manifest)} line {n}: not a JSON record (torn or edited); fix or "
                "remove that line, or choose another --out"
            )


_NUMBERED = re.compile(r"^(\d{4,})_")


def _next_number(out_dir: Path, manifest_bytes: bytes) -> int:
    """After every numbered file in the folder and every manifest line: a deleted manifest
    or a concurrent run never makes a new output take an old one's number."""
    used = [int(m.group(1)) for f in out_dir.iterdir() if (m := _NUMBERED.match(f.name))]
    lines = sum(1 for line in manifest_bytes.split(b"\n") if line.strip())
    return max([lines - 1, *used], default=-1) + 1


def write_outputs(out_dir: Path, results: Sequence[GeneratedImage]) -> list[Path]:
    """Write each PNG under a new name (``O_EXCL``-style link: an existing file is never
    replaced), then append their records to ``manifest.jsonl`` (rewritten atomically), all
    under a lock in the folder: concurrent ``genie augment`` runs into one ``--out`` lose and
    overwrite nothing. The manifest's existing lines are kept byte for byte."""
    from filelock import FileLock

    from genie_plugin.io import atomic_write_bytes, link_new_bytes, png_bytes

    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / MANIFEST
    paths = []
    with FileLock(str(out_dir / f".{MANIFEST}.lock")):
        old = manifest.read_bytes() if manifest.exists() else b""
        if old and not old.endswith(b"\n"):
            old += b"\n"  # a torn last line stays its own line
        n = _next_number(out_dir, old)
        lines = []
        for res in results:
            data = png_bytes(res.image)
            while not link_new_bytes(out_dir / (name := output_name(n, res.record)), data):
                n += 1  # taken (a writer without the lock, on another node): the next number
            n += 1
            paths.append(out_dir / name)
            lines.append(json.dumps({**res.record, "image": name}, sort_keys=True) + "\n")
        atomic_write_bytes(manifest, old + "".join(lines).encode("utf-8"))
    return paths
