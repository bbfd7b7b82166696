"""``genie bench``: run episodic benchmarks and render leaderboards."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import ChannelsLastOpt, DeviceOpt, MaxBatchOpt, handle_errors

app = typer.Typer(help="Episodic few-shot benchmarks and leaderboards.", no_args_is_help=True)

ScenarioArg = Annotated[
    Path | None, typer.Argument(help="Scenario JSON (default: the embedded benchmark).")
]
StrategyOpt = Annotated[
    list[str] | None, typer.Option("--strategy", "-s", help="Strategies (repeatable).")
]
EpisodesOpt = Annotated[int | None, typer.Option(help="Number of episodes.")]
ScnModelOpt = Annotated[str | None, typer.Option(help="Generator model.")]
ScnBackendOpt = Annotated[
    str | None,
    typer.Option(
        help="UNet backend: torch, cuda-graphs, torch-compile, torch-compile-cuda-graphs, onnx "
        "or onnx-cuda-graphs.",
    ),
]
CacheOpt = Annotated[Path, typer.Option(help="Augmentation cache folder.")]


def load_scenario(path: Path | None, strategy: list[str] | None, **overrides):
    """The scenario file (or the embedded default) with the options that were given."""
    from genie_plugin.bench.runner import Scenario

    scn = Scenario.load(path) if path else Scenario()
    over = {k: v for k, v in overrides.items() if v is not None}
    if strategy:
        over["strategies"] = tuple(strategy)
    # the embedded set calls its test split "novel"; a real dataset given on the command line
    # without --split uses "test"
    real = overrides.get("dataset") not in (None, "shapes")
    if real and "split" not in over and scn.split == "novel":
        over["split"] = "test"
    return Scenario.from_dict({**scn.to_dict(), **over})


@app.command("run")
@handle_errors
def run(
    scenario: ScenarioArg = None,
    strategy: StrategyOpt = None,
    dataset: Annotated[
        str | None,
        typer.Option(help="shapes, mini-imagenet, tiered-imagenet or cub (learn2learn files)."),
    ] = None,
    split: Annotated[str | None, typer.Option(help="Split to draw episodes from.")] = None,
    root: Annotated[
        str | None, typer.Option(help="Dataset folder in learn2learn's layout (not for shapes).")
    ] = None,
    episodes: EpisodesOpt = None,
    ways: Annotated[int | None, typer.Option(help="Classes per episode.")] = None,
    shots: Annotated[int | None, typer.Option(help="Support images per class.")] = None,
    steps: Annotated[int | None, typer.Option(help="Sampler steps.")] = None,
    guidance: Annotated[float | None, typer.Option(help="Classifier-free guidance scale.")] = None,
    timestep_shift: Annotated[
        float | None, typer.Option(help="Sampler time shift (see `genie augment --help`).")
    ] = None,
    guidance_t_min: Annotated[
        float | None, typer.Option(help="Guidance interval floor (see `genie augment --help`).")
    ] = None,
    backend: ScnBackendOpt = None,
    model: ScnModelOpt = None,
    backbone: Annotated[str | None, typer.Option(help="Few-shot backbone.")] = None,
    out: Annotated[
        Path, typer.Option(help="Results JSONL (rows replaced per scenario+strategy).")
    ] = Path("out/bench/results.jsonl"),
    cache: CacheOpt = Path("out/bench/cache"),
    device: DeviceOpt = None,
) -> None:
    """Evaluate strategies on one scenario; every strategy sees the same episodes."""
    from rich.console import Console

    from genie_plugin.bench.leaderboard import genie_unet_rows, rows_json, unet_cost
    from genie_plugin.bench.runner import run_scenario
    from genie_plugin.io import atomic_write_text, read_jsonl

    scn = load_scenario(
        scenario,
        strategy,
        dataset=dataset,
        split=split,
        root=root,
        episodes=episodes,
        ways=ways,
        shots=shots,
        steps=steps,
        guidance=guidance,
        timestep_shift=timestep_shift,
        guidance_t_min=guidance_t_min,
        backend=backend,
        model=model,
        backbone=backbone,
    )
    if scn.dataset != "shapes":
        from genie_plugin.l2l.datasets import canonical_split, require_split

        require_split(scn.dataset, scn.root or "~/data", canonical_split(scn.split))
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
    genie_rows = genie_unet_rows(rows)
    for r in rows:
        if r["status"] == "ok":
            cost = ""
            if r.get("unet_rows"):
                per_ep, ratio = unet_cost(r, genie_rows)
                cost = f", {per_ep:.0f} UNet rows/episode"
                if ratio is not None:
                    cost += f" = {ratio:.2f}× genie"
            console.print(
                f"{r['strategy']:>14}: {r['mean']:.2f} ± {r['ci95']:.2f}  ({r['wall_s']} s{cost})"
            )
        else:
            console.print(f"{r['strategy']:>14}: [red]failed[/] {r['error']}")
    console.print(f"results: {out}")


@app.command("generate")
@handle_errors
def generate(
    scenario: ScenarioArg = None,
    strategy: StrategyOpt = None,
    episodes: EpisodesOpt = None,
    model: ScnModelOpt = None,
    cache: CacheOpt = Path("out/bench/cache"),
    max_batch: MaxBatchOpt = "64",
    backend: ScnBackendOpt = None,
    channels_last: ChannelsLastOpt = False,
    device: DeviceOpt = None,
) -> None:
    """Fill the augmentation cache for a whole scenario without scoring it.

    Under `accelerate launch` (multi-GPU, multi-node; on CPU `--multi_gpu --num_processes N`) the work
    units are sharded across processes; every process writes into the same cache, and the
    cache and results are identical to a single process's.
    """
    from rich.console import Console

    from genie_plugin.bench.runner import generate_scenario
    from genie_plugin.progress import make_progress

    scn = load_scenario(scenario, strategy, episodes=episodes, model=model, backend=backend)
    rank, world, dev, state = 0, 1, device, None
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        import torch
        from accelerate import PartialState

        # on CPU-only machines accelerate needs cpu=True to form its (gloo) process group
        on_cpu = not torch.cuda.is_available()
        state = PartialState(cpu=on_cpu)
        rank, world = state.process_index, state.num_processes
        dev = device or ("cpu" if on_cpu else str(state.device))
    console = Console()
    tag = f"[{rank}/{world}] " if world > 1 else ""
    with make_progress(console=console) as bar:
        task = bar.add_task(f"{tag}{scn.name} units", total=None, info="")

        def advance(done, total, cached):
            bar.update(
                task,
                completed=done,
                total=total,
                info=f"generated {cached.generated}, cached {cached.hits}",
            )

        stats = generate_scenario(
            scn,
            cache_dir=cache,
            process_index=rank,
            num_processes=world,
            device=dev,
            max_batch=max_batch,
            channels_last=channels_last,
            progress=advance,
        )
    console.print(
        f"{tag}{stats['units']} of {stats['of_units']} units: {stats['images']} images "
        f"({stats['generated']} generated, {stats['hits']} from the cache; "
        f"{stats.get('unet_rows', 0)} UNet rows from scratch) in {cache}"
    )
    if state is not None:
        state.wait_for_everyone()


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
