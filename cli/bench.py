"""``genie bench``: run episodic benchmarks and render leaderboards."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import DeviceOpt, handle_errors

app = typer.Typer(help="Episodic few-shot benchmarks and leaderboards.", no_args_is_help=True)


@app.command("run")
@handle_errors
def run(
    scenario: Annotated[
        Path | None, typer.Argument(help="Scenario JSON (default: the embedded benchmark).")
    ] = None,
    strategy: Annotated[
        list[str] | None, typer.Option("--strategy", "-s", help="Strategies (repeatable).")
    ] = None,
    episodes: Annotated[int | None, typer.Option(help="Number of episodes.")] = None,
    shots: Annotated[int | None, typer.Option(help="Support images per class.")] = None,
    steps: Annotated[int | None, typer.Option(help="Sampler steps.")] = None,
    model: Annotated[str | None, typer.Option(help="Generator model.")] = None,
    backbone: Annotated[str | None, typer.Option(help="Few-shot backbone.")] = None,
    out: Annotated[
        Path, typer.Option(help="Results JSONL (rows replaced per scenario+strategy).")
    ] = Path("out/bench/results.jsonl"),
    cache: Annotated[Path, typer.Option(help="Augmentation cache folder.")] = Path(
        "out/bench/cache"
    ),
    device: DeviceOpt = None,
) -> None:
    """Evaluate strategies on one scenario; every strategy sees the same episodes."""
    from rich.console import Console

    from genie_plugin.bench.leaderboard import rows_json
    from genie_plugin.bench.runner import Scenario, run_scenario
    from genie_plugin.io import atomic_write_text, read_jsonl

    scn = Scenario.load(scenario) if scenario else Scenario()
    over = {
        k: v
        for k, v in dict(
            episodes=episodes, shots=shots, steps=steps, model=model, backbone=backbone
        ).items()
        if v is not None
    }
    if strategy:
        over["strategies"] = tuple(strategy)
    scn = Scenario.from_dict({**scn.to_dict(), **over})
    console = Console()
    console.print(
        f"[bold]{scn.name}[/]: {scn.dataset}/{scn.split} {scn.ways}-way {scn.shots}-shot, {scn.episodes} episodes, strategies {', '.join(scn.strategies)}"
    )
    from genie_plugin.progress import make_progress

    with make_progress(console=console) as bar:
        tasks = {s: bar.add_task(s, total=scn.episodes, info="") for s in scn.strategies}

        def advance(sname, done, total, cached):
            info = f"generated {cached.generated}, cached {cached.hits}" if cached else ""
            bar.update(tasks[sname], completed=done, info=info)

        rows = run_scenario(scn, cache_dir=cache, progress=advance, device=device)
    old = read_jsonl(out) if out.exists() else []
    keep = [
        r
        for r in old
        if (r["scenario"], r["strategy"]) not in {(x["scenario"], x["strategy"]) for x in rows}
    ]
    atomic_write_text(out, rows_json(keep + rows))
    for r in rows:
        if r["status"] == "ok":
            console.print(
                f"{r['strategy']:>13}: {r['mean']:.2f} ± {r['ci95']:.2f}  ({r['wall_s']} s)"
            )
        else:
            console.print(f"{r['strategy']:>13}: [red]failed[/] {r['error']}")
    console.print(f"results: {out}")


@app.command("leaderboard")
@handle_errors
def leaderboard(
    results: Annotated[list[Path], typer.Argument(help="Result JSONL files.")],
    out: Annotated[
        Path, typer.Option(help="Markdown path; .csv and .png are written beside it.")
    ] = Path("benchmarks/leaderboards/embedded.md"),
) -> None:
    """Render Markdown, CSV and a bar chart from committed result files."""
    from genie_plugin.bench.leaderboard import write_leaderboard

    for kind, path in write_leaderboard(results, out).items():
        typer.echo(f"{kind}: {path}")
