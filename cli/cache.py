"""``genie cache``: check (and mend) an augmentation cache folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import handle_errors

app = typer.Typer(help="Check and mend augmentation caches.", no_args_is_help=True)


@app.command("verify")
@handle_errors
def verify(
    folder: Annotated[Path, typer.Argument(help="Cache folder (e.g. out/bench/cache).")],
    repair: Annotated[
        bool,
        typer.Option(
            help="Delete bad images and rewrite the manifest without torn lines or records of "
            "missing files; the next run regenerates exactly those images."
        ),
    ] = False,
) -> None:
    """Check every cached image against its manifest hash; exit 1 if something is bad."""
    from genie_plugin.diffusion.cache import verify_cache

    rep = verify_cache(folder, repair=repair)
    typer.echo(
        f"{folder}: {rep['ok']} ok, {rep['bad']} bad, {rep['missing']} listed but missing, "
        f"{rep['unlisted']} without a manifest record, {rep['torn_lines']} torn manifest lines"
    )
    for line in rep["bad_keys"][:20]:
        typer.echo(f"  bad {line}")
    if len(rep["bad_keys"]) > 20:
        typer.echo(f"  ... and {len(rep['bad_keys']) - 20} more")
    problems = rep["bad"] + rep["missing"] + rep["torn_lines"]
    if repair:
        typer.echo(f"repaired: {rep['repaired']} (the next run regenerates the removed images)")
    elif problems:
        typer.echo(f"run `genie cache verify --repair {folder}` to mend it")
        raise typer.Exit(code=1)
