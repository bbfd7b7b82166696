"""Entry point of the ``genie`` console script. Keep imports light: ``genie --help`` is instant."""

from __future__ import annotations

import os

import typer

# diffusers logs a warning on import when optimum and optimum-onnx are both installed; users
# can still raise verbosity with DIFFUSERS_VERBOSITY=info.
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

from . import augment, bench, cache, datasets, export, model, strategies, sweep

app = typer.Typer(
    name="genie",
    help="GeNIe: generative hard negatives for few-shot benchmarks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(strategies.app, name="strategies")
app.add_typer(datasets.app, name="datasets")
app.add_typer(bench.app, name="bench")
app.add_typer(cache.app, name="cache")
app.add_typer(model.app, name="model")
app.command("augment")(augment.augment)
app.command("sweep")(sweep.sweep)
app.command("export-onnx")(export.export_onnx)


@app.command("version")
def version() -> None:
    """Print the package version."""
    from genie_plugin import __version__

    typer.echo(__version__)


if __name__ == "__main__":
    from . import run

    run()
