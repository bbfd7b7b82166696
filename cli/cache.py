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
            help="Remove bad images and bad backbone-feature entries (only regular files of the "
            "cache's own shard folders, each re-checked first); the next run regenerates "
            "exactly those. Safe beside running writers: no manifest is rewritten."
        ),
    ] = False,
) -> None:
    """Check every cached image against its manifest hash and every backbone-feature entry
    against its sealed hash; exit 1 if something is bad. Records of files that are gone and
    torn manifest lines are reported, not problems: the next run regenerates those images."""
    from genie_plugin.diffusion.cache import verify_cache

    rep = verify_cache(folder, repair=repair)
    typer.echo(
        f"{folder}: {rep['ok']} ok, {rep['bad']} bad, {rep['missing']} listed but missing, "
        f"{rep['unlisted']} without a manifest record, {rep['torn_lines']} torn or invalid "
        f"manifest lines; features {rep['features_ok']} ok, {rep['features_bad']} bad"
        + (f"; {rep['links_skipped']} links skipped" if rep["links_skipped"] else "")
    )
    for line in rep["bad_keys"][:20]:
        typer.echo(f"  bad {line}")
    if len(rep["bad_keys"]) > 20:
        typer.echo(f"  ... and {len(rep['bad_keys']) - 20} more")
    problems = rep["bad"] + rep["features_bad"]
    if repair:
        marks = rep.get("done_marks_cleared", 0)
        typer.echo(
            f"repaired: {rep['repaired']} (the next run regenerates the removed images)"
            + (f"; {marks} `bench generate` blocks marked done reopened" if marks else "")
        )
    elif problems:
        typer.echo(f"run `genie cache verify --repair {folder}` to mend it")
        raise typer.Exit(code=1)
