"""``genie augment``: turn your own images into GeNIe (or baseline) outputs plus a manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from genie_plugin.sinks import one_line

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


@handle_errors
@model_options
def augment(
    sources: Annotated[list[Path], typer.Argument(help="Source images (PNG/JPEG/...).")],
    target: Annotated[
        str, typer.Option("--target", "-t", help="Target class name, e.g. 'tabby cat'.")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output folder (PNGs + manifest.jsonl).")
    ],
    strategy: Annotated[
        str, typer.Option("--strategy", "-s", help="genie, genie_ada, text2image, img2img, ...")
    ] = "genie",
    ratio: Annotated[
        float | None, typer.Option(help="Noise ratio r in (0, 1] (strategies with a ratio).")
    ] = None,
    source_class: Annotated[
        str, typer.Option(help="Class name of the sources (recorded in the manifest).")
    ] = "source",
    target_images: Annotated[
        list[Path] | None,
        typer.Option(
            "--target-image", help="Real images of the target class (GeNIe-Ada prototype)."
        ),
    ] = None,
    seed: SeedOpt = 0,
    backbone: BackboneOpt = None,
    max_batch: MaxBatchOpt = "16",
    opts: ModelOptions | None = None,  # the model options, added by @model_options
) -> None:
    """Generate one output per source image towards --target with the chosen strategy."""
    from genie_plugin.augment.outputs import check_manifest, cli_episode, write_outputs
    from genie_plugin.errors import ConfigError
    from genie_plugin.io import load_image
    from genie_plugin.registry import make_ref, parse_strategy
    from genie_plugin.strategies.base import RenderContext

    if not target.strip():
        raise ConfigError("--target must not be empty")
    ref = parse_strategy(strategy)  # "genie" or "genie:ratio=0.6,count=2"
    overrides = ref.options
    if ratio is not None:
        probe = ref.create()
        if "ratio" not in probe.config.to_dict():
            raise ConfigError(f"--ratio does not apply to strategy {strategy!r} (it has no ratio)")
        overrides["ratio"] = ratio
    strat = make_ref(ref.name, overrides, None, where=f"--strategy {strategy!r}").create()
    check_out_dir(out)
    check_manifest(out)
    check_max_batch(max_batch)
    # Read every input before generating anything: a bad file fails fast, nothing is written.
    images = {str(p): load_image(p, on_note=echo_note) for p in sources}
    protos = {f"target:{p}": load_image(p, on_note=echo_note) for p in target_images or []}
    if strat.needs_embedder and backbone is None:
        raise ConfigError(f"{strategy} scores candidates with a backbone: pass --backbone NAME")
    gen = load_model(opts)
    max_batch = max_batch_for(gen, max_batch)
    embed = None
    if backbone is not None:
        from genie_plugin.fewshot.backbones import load_backbone

        embed = load_backbone(backbone, device=opts.device)
    episode = cli_episode(
        strategy,
        list(images),
        target,
        source_class=source_class,
        target_ids=list(protos),
        seed=seed,
        same_class=strat.sources == "same",
    )
    import torch

    # Plan and render separately (not run_strategy) so the progress bar knows its total.
    from genie_plugin.strategies.base import FitContext

    fit = FitContext.of(strat, gen)  # a peer fits on the images given (no shared store here)
    specs = strat.plan_episode(
        episode, torch.Generator("cpu").manual_seed(seed), {**images, **protos}, embed, fit
    )
    total = strat.planned_image_steps(gen, specs)
    with image_step_progress(total, f"{strategy} → {target}") as advance:
        ctx = RenderContext(gen, {**images, **protos}, embed, max_batch, advance)
        results = strat.render(specs, ctx) if specs else []
    paths = write_outputs(out, results)
    typer.echo(f"wrote {len(paths)} image(s) and {one_line(out / 'manifest.jsonl')}")
