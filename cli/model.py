"""``genie model``: what a model is, without loading it."""

from __future__ import annotations

from typing import Annotated

import typer

from genie_plugin.sinks import one_line

from ._common import DeviceOpt, handle_errors

app = typer.Typer(help="Describe generator models.", no_args_is_help=True)


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"  # pragma: no cover


@app.command("info")
@handle_errors
def info(
    model: Annotated[
        str,
        typer.Option(help="A built-in name, a diffusers folder, a .safetensors file or a hub id."),
    ] = "embedded",
    device: DeviceOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the description as JSON.")] = False,
) -> None:
    """Family, the files the content fingerprint hashes (what generation keys name), the
    sampler settings it recommends, the cached backend choice and ONNX exports. Loads no
    weights and downloads nothing."""
    import json

    from genie_plugin.diffusion.info import model_info

    d = model_info(model, device=device)
    if as_json:
        typer.echo(json.dumps(d, indent=2, sort_keys=True))
        return
    typer.echo(f"model        {one_line(d['model'])} ({d['kind']})")
    if d.get("location") is None:
        typer.echo(f"note         {one_line(d['note'])}")
        return
    typer.echo(f"location     {one_line(d['location'])}")
    fam = d["family"]
    state = "supported" if fam["supported"] else "not run by this plugin"
    typer.echo(f"family       {fam['name']}, {fam['prediction']}: {state}")
    if fam["supported"]:
        typer.echo(f"components   {', '.join(fam['components'])} (network: {fam['network']})")
    else:
        typer.echo(f"why          {one_line(fam['why'])}")
    total = sum(f["bytes"] for f in d["files"])
    typer.echo(f"fingerprint  {d['fingerprint']} (the generation keys' model field)")
    typer.echo(f"hashed files {len(d['files'])}, {_size(total)}:")
    for f in d["files"]:
        typer.echo(f"  {one_line(f['path'])}  {_size(f['bytes'])}")
    s = d["sampler"]
    shown = ", ".join(f"{k} {v}" for k, v in sorted(s["settings"].items())) or (
        "DPM-Solver++ 50 steps, CFG 7.5 (the reference)"
    )
    typer.echo(f"sampler      {shown} [{s['source']}]")
    if d.get("cost"):
        for meaning, c in d["cost"]["rows_per_output"].items():
            typer.echo(
                f"rows/output  r as {meaning}: GeNIe {c['genie']}, GeNIe-Ada {c['genie_ada']}, "
                f"lite {c['genie_ada_lite']}, fast {c['genie_ada_fast']}; "
                f"{c['distinct_start_levels']} distinct candidate levels of 5"
            )
    if "backend_choice" in d:
        typer.echo(
            f"backend      {d['backend_choice'] or 'no cached choice (--backend auto times it once)'}"
        )
        exports = d["onnx_exports"]
        typer.echo(
            "onnx         "
            + (", ".join(f"{k}: {one_line(v)}" for k, v in exports.items()) or "no export yet")
        )
