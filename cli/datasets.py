"""``genie datasets``: the embedded shapes dataset as plain files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import handle_errors, status

app = typer.Typer(help="Datasets: export the embedded shapes dataset.", no_args_is_help=True)


@app.command("export-shapes")
@handle_errors
def export_shapes(
    root: Annotated[Path, typer.Argument(help="Folder to write {split}/{class}/NNNN.png into.")],
    per_class: Annotated[int, typer.Option(help="Images per class.")] = 120,
    seed: Annotated[int, typer.Option(help="Dataset seed.")] = 0,
) -> None:
    """Write the shapes dataset (base/val/novel splits) as PNG files."""
    from genie_plugin.embedded.dataset import export_png_tree

    with status(f"writing shapes dataset to {root}"):
        n = export_png_tree(root, per_class=per_class, seed=seed)
    typer.echo(f"wrote {n} images under {root}")
