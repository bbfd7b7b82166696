"""``genie datasets``: the embedded shapes dataset as plain files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from genie_plugin.core.prompts import DEFAULT_PROMPT
from genie_plugin.sinks import one_line

from ._common import handle_errors, status

app = typer.Typer(
    help="Datasets: check benchmark folders, export the embedded shapes dataset.",
    no_args_is_help=True,
)


@app.command("check")
@handle_errors
def check(
    root: Annotated[Path, typer.Argument(help="Folder holding the datasets (learn2learn layout).")],
    dataset: Annotated[
        list[str] | None,
        typer.Option("--dataset", "-d", help="Only these (mini-imagenet, tiered-imagenet, cub)."),
    ] = None,
) -> None:
    """Report, per dataset and split, which of the files learn2learn reads are present."""
    from genie_plugin.data.specs import REAL_DATASETS, SPECS, check_dataset

    if not root.is_dir():
        raise typer.BadParameter(f"{root} is not a folder", param_hint="ROOT")
    any_ok = False
    for name in dataset or REAL_DATASETS:
        rep = check_dataset(name, root)
        usable = [sp for sp in SPECS[name].splits if rep.split_ok(sp)]
        any_ok |= bool(usable)
        state = "complete" if rep.ok else ("partial" if usable else "missing")
        typer.echo(f"{name}: {state} (usable splits: {', '.join(usable) or 'none'})")
        shown = rep.missing if len(rep.missing) <= 6 else rep.missing[:6]
        for m in shown:
            typer.echo(f"  missing  {m}")
        if len(rep.missing) > len(shown):
            typer.echo(f"  missing  ... {len(rep.missing) - len(shown)} more")
        for path, why in rep.corrupt:
            typer.echo(f"  corrupt  {path}: {why}")
        if not rep.ok:
            typer.echo(f"  source   {SPECS[name].source}")
    if not any_ok:
        raise typer.Exit(1)


@app.command("download")
@handle_errors
def download(
    dataset: Annotated[str, typer.Argument(help="mini-imagenet, tiered-imagenet or cub.")],
    root: Annotated[Path, typer.Option(help="Folder to download into (learn2learn layout).")],
    split: Annotated[
        list[str] | None, typer.Option("--split", help="Splits (default: all three).")
    ] = None,
) -> None:
    """Download through learn2learn's own downloaders (needs network; GBs for tieredImageNet)."""
    from genie_plugin.data.datasets import load_split
    from genie_plugin.data.specs import SPECS, canonical_split, check_dataset

    if dataset not in SPECS:
        raise typer.BadParameter(f"choose one of {list(SPECS)}", param_hint="DATASET")
    for sp in split or SPECS[dataset].splits:
        sp = canonical_split(sp)
        with status(f"downloading {dataset} ({sp}) into {root}"):
            load_split(dataset, sp, root=root, download=True)
    rep = check_dataset(dataset, root)
    typer.echo(f"{dataset}: {'complete' if rep.ok else 'incomplete'} under {root}")
    if not rep.ok:
        raise typer.Exit(1)


@app.command("classes")
@handle_errors
def classes(
    dataset: Annotated[
        str, typer.Argument(help="shapes, mini-imagenet, tiered-imagenet, cub, cifarfs or fc100.")
    ],
    root: Annotated[
        Path | None, typer.Option(help="Dataset folder (learn2learn layout; not for shapes).")
    ] = None,
    split: Annotated[str, typer.Option(help="train, validation or test.")] = "test",
    template: Annotated[str, typer.Option(help="Prompt template.")] = DEFAULT_PROMPT,
) -> None:
    """Print each class of a split as the files name it, a tab, and the prompt it gets."""
    from genie_plugin.core.prompts import class_prompt
    from genie_plugin.data.datasets import load_split

    with status(f"reading {dataset} ({split})"):
        data = load_split(dataset, split, root=root)
    for cid, name in zip(data.class_ids, data.class_names, strict=True):
        # names come from the dataset's files: no terminal control sequences pass
        typer.echo(f"{one_line(cid)}\t{one_line(class_prompt(template, name))}")


@app.command("export-shapes")
@handle_errors
def export_shapes(
    root: Annotated[Path, typer.Argument(help="Folder to write {split}/{class}/NNNN.png into.")],
    per_class: Annotated[int, typer.Option(min=1, help="Images per class.")] = 120,
    seed: Annotated[int, typer.Option(help="Dataset seed.")] = 0,
) -> None:
    """Write the shapes dataset (base/val/novel splits) as PNG files."""
    from genie_plugin.embedded.dataset import export_png_tree

    with status(f"writing shapes dataset to {root}"):
        n = export_png_tree(root, per_class=per_class, seed=seed)
    typer.echo(f"wrote {n} images under {root}")
