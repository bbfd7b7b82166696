"""What ``genie sweep`` does, as library functions: one source at many r, scored as GeNIe-Ada."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from genie_plugin.core.ada import AdaSelection, select_from_rows, unit_rows
from genie_plugin.core.prompts import DEFAULT_PROMPT, class_prompt
from genie_plugin.core.schedule import validate_ratio
from genie_plugin.errors import ConfigError
from genie_plugin.io import atomic_write_text, save_png
from genie_plugin.seeding import stable_seed


@dataclass
class SweepResult:
    ratios: tuple[float, ...]
    images: list[Image.Image]
    seed: int
    prompt: str
    selection: AdaSelection | None = None
    prototype: str | None = None

    def to_dict(self) -> dict:
        d = {"ratios": list(self.ratios), "seed": self.seed, "prompt": self.prompt}
        if self.selection is not None:
            d["ada"] = {**self.selection.to_dict(), "prototype": self.prototype}
        return d


def sweep(
    model,
    source: Image.Image,
    target: str,
    ratios: Sequence[float],
    *,
    seed: int = 0,
    embed: Callable | None = None,
    target_images: Sequence[Image.Image] = (),
    prompt_template: str = DEFAULT_PROMPT,
    max_batch: int = 16,
    progress: Callable[[int], None] | None = None,
    prototype_samples: int = 4,
) -> SweepResult:
    """Generate ``source`` -> ``target`` at every ratio with one shared ε (one batched pass).

    With ``embed`` the outputs are scored as GeNIe-Ada does (projection on prototype − source),
    the prototype being the mean of ``target_images`` or, without them, of Text2Image samples.
    """
    from genie_plugin.diffusion.sampler import SampleItem

    if not target.strip():
        raise ConfigError("--target must not be empty")
    rs = tuple(sorted(validate_ratio(r, name="--ratios") for r in ratios))
    if len(set(rs)) != len(rs) or len(rs) < 2:
        raise ConfigError("--ratios needs at least two distinct values")
    prompt = class_prompt(prompt_template, target)
    item_seed = stable_seed(seed, "sweep", target)
    items = [SampleItem(prompt, r, item_seed, source) for r in rs]
    n_fallback = prototype_samples if embed is not None and not target_images else 0
    items += [
        SampleItem(prompt, 1.0, stable_seed(seed, "sweep-prototype", target, k))
        for k in range(n_fallback)
    ]
    images = model.generate(items, max_batch=max_batch, progress=progress)
    result = SweepResult(rs, images[: len(rs)], item_seed, prompt)
    if embed is not None:
        protos = list(target_images) or images[len(rs) :]
        f = unit_rows(embed([*result.images, source, *protos]))
        result.selection = select_from_rows(rs, f[: len(rs)], f[len(rs)], f[len(rs) + 1 :])
        result.prototype = "support" if target_images else "text2image"
    return result


def grid_image(source: Image.Image, result: SweepResult, tile: int = 160) -> Image.Image:
    """One row: the source, then the output at each r, labelled (r* marked when scored)."""
    n = len(result.images) + 1
    pad, label_h = 4, 18
    grid = Image.new("RGB", (n * (tile + pad) + pad, tile + label_h + 2 * pad), "white")
    draw = ImageDraw.Draw(grid)
    tiles = [source, *result.images]
    labels = ["source"] + [f"r={r:.2f}" for r in result.ratios]
    if result.selection is not None:
        i = result.selection.index + 1
        labels[i] += " *"
    for k, (im, text) in enumerate(zip(tiles, labels, strict=True)):
        resample = Image.Resampling.NEAREST if im.width < tile else Image.Resampling.LANCZOS
        from PIL import ImageOps

        x = pad + k * (tile + pad)
        grid.paste(ImageOps.fit(im.convert("RGB"), (tile, tile), resample), (x, pad + label_h))
        draw.text((x + 2, pad + 2), text, fill="black")
    return grid


def plot_curve(result: SweepResult, path: Path, title: str = "") -> Path:
    """GeNIe-Ada curve: projection on (prototype − source) against r, jumps, r* marked."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sel = result.selection
    if sel is None:
        raise ConfigError("no embedding curve: pass --backbone")
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    ax.plot(sel.ratios, sel.projections, "o-", label="⟨e_r, v⟩ / ‖v‖")
    mids = [(a + b) / 2 for a, b in zip(sel.ratios, sel.ratios[1:], strict=False)]
    width = min(b - a for a, b in zip(sel.ratios, sel.ratios[1:], strict=False)) * 0.6
    ax2 = ax.twinx()
    ax2.bar(mids, sel.jumps, width=width, alpha=0.25, color="tab:orange", label="jump |Δ|")
    ax2.set_ylabel("jump")
    ax.axvline(sel.ratio, color="tab:red", ls="--", label=f"r* = {sel.ratio:.2f}")
    ax.set_xlabel("noise ratio r")
    ax.set_ylabel("projection on prototype − source")
    from genie_plugin.sinks import plot_text

    ax.set_title(plot_text(title or f"GeNIe-Ada curve ({result.prompt})"), fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    from genie_plugin.io import atomic_write_bytes

    return atomic_write_bytes(path, buf.getvalue())


def write_sweep(out_dir: Path, source: Image.Image, result: SweepResult, meta: dict) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"grid": save_png(grid_image(source, result), out_dir / "sweep_grid.png")}
    if result.selection is not None:
        files["curve"] = plot_curve(result, out_dir / "ada_curve.png")
    atomic_write_text(
        out_dir / "sweep.json", json.dumps({**meta, **result.to_dict()}, indent=2, sort_keys=True)
    )
    files["json"] = out_dir / "sweep.json"
    return files
