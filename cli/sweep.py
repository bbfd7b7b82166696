"""``genie sweep``: one source towards a target at many r, as a grid (and the GeNIe-Ada curve)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import (
    BackboneOpt,
    MaxBatchOpt,
    ModelOptions,
    SeedOpt,
    check_max_batch,
    check_out_dir,
    echo_note,
    handle_errors,
    image_step_progress,
    load_model,
    max_batch_for,
    model_options,
)

DEFAULT_RATIOS = "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0"


def sample_image_path() -> Path:
    from importlib import resources

    return Path(str(resources.files("genie_plugin") / "assets" / "sample_heart.png"))


@handle_errors
@model_options
def sweep(
    source: Annotated[
        Path | None,
        typer.Argument(help="Source image (default: a bundled shapes image of a heart)."),
    ] = None,
    target: Annotated[str, typer.Option("--target", "-t", help="Target class name.")] = "star",
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("out/sweep"),
    ratios: Annotated[
        str, typer.Option(help="Comma-separated noise ratios in (0, 1].")
    ] = DEFAULT_RATIOS,
    target_images: Annotated[
        list[Path] | None,
        typer.Option("--target-image", help="Real target-class images for the prototype."),
    ] = None,
    seed: SeedOpt = 0,
    backbone: BackboneOpt = None,
    max_batch: MaxBatchOpt = "16",
    opts: ModelOptions | None = None,  # the model options, added by @model_options
) -> None:
    """Write sweep_grid.png (source + output per r) and, with --backbone, ada_curve.png."""
    from genie_plugin.augment.sweep import sweep as run_sweep
    from genie_plugin.augment.sweep import write_sweep
    from genie_plugin.core.schedule import validate_ratio
    from genie_plugin.diffusion.sampler import SampleItem, total_image_steps
    from genie_plugin.errors import ConfigError
    from genie_plugin.io import load_image

    try:
        rs = [float(x) for x in ratios.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--ratios must be comma-separated numbers, got {ratios!r}") from None
    if not target.strip():
        raise ConfigError("--target must not be empty")
    check_out_dir(out)
    check_max_batch(max_batch)
    src_path = source or sample_image_path()
    src = load_image(src_path, on_note=echo_note)
    protos = [load_image(p, on_note=echo_note) for p in target_images or []]
    gen = load_model(opts)
    max_batch = max_batch_for(gen, max_batch)
    embed = None
    if backbone is not None:
        from genie_plugin.fewshot.backbones import load_backbone

        embed = load_backbone(backbone, device=opts.device)
    rs = [validate_ratio(r, name="--ratios") for r in rs]
    n_proto = 4 if embed is not None and not protos else 0
    planned = [SampleItem("", r, 0, src) for r in rs] + [SampleItem("", 1.0, 0)] * n_proto
    total = total_image_steps(gen, planned)
    with image_step_progress(total, f"sweep → {target}") as advance:
        result = run_sweep(
            gen,
            src,
            target,
            rs,
            seed=seed,
            embed=embed,
            target_images=protos,
            max_batch=max_batch,
            progress=advance,
        )
    meta = {
        "source": str(src_path),
        "target": target,
        "model": gen.describe(),
        "backbone": backbone,
    }
    files = write_sweep(out, src, result, meta)
    if result.selection is not None:
        typer.echo(f"GeNIe-Ada r* = {result.selection.ratio:.2f}")
    for kind, path in files.items():
        typer.echo(f"{kind}: {path}")
