"""``genie export-onnx``: the UNet through optimum to ONNX, checked, optionally fused."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import ConfigOpt, DeviceOpt, LoraOpt, ModelOpt, handle_errors, status


@handle_errors
def export_onnx(
    out: Annotated[Path, typer.Option(help="Output folder (unet/model.onnx + report).")],
    model: ModelOpt = "embedded",
    config: ConfigOpt = None,
    fp16: Annotated[
        bool,
        typer.Option(
            help="Half-precision graphs (traced in fp32, fused, then converted; no GPU needed)."
        ),
    ] = False,
    optimize: Annotated[
        bool, typer.Option(help="Run onnxruntime's UNet fusions (model_optimized.onnx).")
    ] = False,
    opset: Annotated[
        int, typer.Option(min=14, max=20, help="ONNX opset (14-20: the UNet's attention needs 14).")
    ] = 17,
    device: DeviceOpt = None,
    lora: LoraOpt = None,
) -> None:
    """Export the model's UNet (per-sample timestep, dynamic batch) and check it against torch."""
    import json

    import torch

    from genie_plugin.diffusion import load_generator
    from genie_plugin.diffusion.onnx_backend import export_unet

    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    with status(f"loading model {model}"):
        gen = load_generator(model, device=dev, config=config, lora=lora or ())
    with status(f"exporting the UNet of {model} to {out}"):
        rep = export_unet(gen, out, fp16=fp16, optimize=optimize, opset=opset, device=dev)
    typer.echo(
        f"unet: {rep['files']['unet']} ({rep['nodes']['total']} nodes, checker {rep['checker']})"
    )
    par = rep["parity"]
    typer.echo(
        f"parity vs torch: max abs {par['max_abs']:.2e}"
        if "max_abs" in par
        else f"parity vs torch: {par['status']}"
    )
    if optimize:
        o = rep["optimized"]
        fused = {k: v for k, v in (o.get("fused") or {}).items() if v}
        typer.echo(f"optimized: {o['status']} {json.dumps(fused) if fused else o.get('error', '')}")
    typer.echo(f"report: {out / 'export_report.json'}")
