"""``genie strategies``: list and inspect registered strategies."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ._common import handle_errors

app = typer.Typer(help="List and inspect augmentation strategies.", no_args_is_help=True)


@app.command("list")
@handle_errors
def list_cmd(
    pattern: Annotated[str, typer.Argument(help="fnmatch pattern, e.g. 'genie*'.")] = "*",
) -> None:
    """List registered strategies (built-in and plugins)."""
    from rich.console import Console
    from rich.table import Table

    from genie_plugin.registry import REGISTRY

    table = Table("name", "source", "description")
    for name in REGISTRY.names(pattern):
        e = REGISTRY.get(name)
        doc = (getattr(e.factory, "__doc__", "") or "").strip().splitlines()
        table.add_row(name, f"{e.distribution} {e.version}".strip(), doc[0] if doc else "")
    console = Console()
    console.print(table)
    for name, why in REGISTRY.broken().items():
        console.print(f"[yellow]broken plugin[/] {name}: {why}")


@app.command("show")
@handle_errors
def show_cmd(name: Annotated[str, typer.Argument(help="Strategy name.")]) -> None:
    """Show a strategy's default config (JSON), origin and description."""
    from genie_plugin.registry import REGISTRY

    e = REGISTRY.get(name)
    strategy = e.create()
    info = {
        "name": name,
        "distribution": e.distribution,
        "version": e.version,
        "target": e.target,
        "generative": bool(getattr(strategy, "generative", True)),
        "config": strategy.config.to_dict(),
        "description": (type(strategy).__doc__ or "").strip(),
    }
    typer.echo(json.dumps(info, indent=2, sort_keys=True))
