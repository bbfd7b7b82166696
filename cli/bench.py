"""``genie bench``: run episodic benchmarks and render leaderboards."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from genie_plugin.backends import help_text as backend_help
from genie_plugin.sinks import markup, one_line

from ._common import (
    ConfigOpt,
    DeviceOpt,
    LoraOpt,
    MaxBatchOpt,
    check_max_batch,
    check_out_dir,
    check_writable,
    handle_errors,
)

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
        help=backend_help() + " auto's choice is printed and recorded.",
    ),
]
CacheOpt = Annotated[Path, typer.Option(help="Augmentation cache folder.")]
DatasetOpt = Annotated[
    str | None,
    typer.Option(
        help="shapes, mini-imagenet, tiered-imagenet, cub (learn2learn files) or "
        "mini-imagenet-full / tiered-imagenet-full (an ImageNet train folder, full-resolution "
        "sources): without a scenario file, runs that dataset's shipped scenario."
    ),
]
RootOpt = Annotated[
    str | None,
    typer.Option(help="Dataset folder (learn2learn's layout; ImageNet root for *-full)."),
]
ShotsOpt = Annotated[int | None, typer.Option(help="Support images per class (1 or 5: shipped).")]
BackboneScnOpt = Annotated[str | None, typer.Option(help="Few-shot backbone.")]
SplitOpt = Annotated[str | None, typer.Option(help="Split to draw episodes from.")]
WaysOpt = Annotated[int | None, typer.Option(help="Classes per episode.")]
StepsOpt = Annotated[int | None, typer.Option(help="Sampler steps.")]
ResolutionOpt = Annotated[
    int | None, typer.Option(help="Generation size in px (default: the model's native).")
]
GuidanceOpt = Annotated[float | None, typer.Option(help="Classifier-free guidance scale.")]
ShiftOpt = Annotated[
    float | None, typer.Option(help="Sampler time shift (see `genie augment --help`).")
]
GuidanceFloorOpt = Annotated[
    float | None, typer.Option(help="Guidance floor (see `genie augment --help`).")
]
ScnChannelsLastOpt = Annotated[
    bool | None,
    typer.Option(
        "--channels-last/--no-channels-last",
        help="UNet and VAE channels-last (faster GPU convolutions; other pixels, so other "
        "cache keys): the scenario's setting unless given.",
        show_default=False,
    ),
]


#: Scenario fields chosen for one dataset: dropped when --dataset points a file at another.
SETTINGS_OF_A_DATASET = (
    "model",
    "model_config",
    "backbone",
    "steps",
    "view_size",
    "resolution",
    "guidance",
    "timestep_shift",
    "guidance_t_min",
    "root",
    "lora",
    "scheduler",
    "timestep_spacing",
    "ratio_meaning",
)


def load_scenario(path: Path | None, strategy: list[str] | None, **overrides):
    """The scenario to run: the file given; else, with ``--dataset``, that dataset's shipped
    scenario (reference settings; ``--shots``/``--ways`` pick or adapt it); else the embedded
    benchmark. Options given on the command line override it. The run is renamed when they
    change dataset, ways or shots, so its name always says what ran."""
    from genie_plugin.bench.scenario import Scenario, scenario_name, shipped_scenario

    over = {k: v for k, v in overrides.items() if v is not None}
    if path:
        scn = Scenario.load(path)
    elif "dataset" in over:
        scn = shipped_scenario(
            over["dataset"], shots=over.get("shots", 1), ways=over.get("ways", 5)
        )
    else:
        scn = Scenario.load("embedded-5w1s")
    if strategy:
        over["strategies"] = tuple(strategy)
    d = scn.to_dict()
    if d["name"] == scenario_name(scn.dataset, scn.ways, scn.shots):
        d["name"] = ""  # derived again from what runs
    if over.get("dataset", scn.dataset) != scn.dataset:
        # another dataset than the file's: the file's model, backbone and sampler settings were
        # chosen for its dataset and do not carry over (only what the user names does)
        for k in SETTINGS_OF_A_DATASET:
            d.pop(k, None)
        if "split" not in over and scn.split in ("novel", "test"):
            over["split"] = "novel" if over["dataset"] == "shapes" else "test"
    return Scenario.from_dict({**d, **over})


def resolve_auto_backend(scn, device, console, *, threads: int | None = None):
    """``--backend auto``: the cached choice for this model, device and thread count, else load
    the model and time the backends that run here; print the choice under the header and go on
    with the chosen one (the scenario, its rows and the cache keys record it, never "auto").
    Returns the scenario and the loaded model (None when nothing is generated, the backend was
    named, the choice was cached, or ``threads`` is given). ``threads``: time the backends with
    this many CPU threads, as ``--jobs`` workers will run them (they load their own)."""
    import dataclasses

    import torch

    if scn.backend != "auto" or not any(scn.ref(s).create().generative for s in scn.labels):
        return scn, None
    from genie_plugin.bench.runner import scenario_generator

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        if not scn.model_config:
            # a cached choice needs no load here: the run (or each --jobs worker) loads the
            # model only if an image is not in the cache
            from genie_plugin.diffusion.loading import cached_backend_choice

            choice = cached_backend_choice(scn.model, device)
            if choice is not None:
                console.print(f"  backend {choice.summary()}", soft_wrap=True)
                return dataclasses.replace(scn, backend=choice.backend), None
        gen = scenario_generator(scn, device, lazy=True)  # lazy: its facts are recorded
    finally:
        torch.set_num_threads(before)
    console.print(f"  backend {gen.stats['backend_choice']}", soft_wrap=True)
    return dataclasses.replace(scn, backend=gen.backend), (gen if threads is None else None)


def check_results_out(out: Path) -> None:
    """Before any work: ``--out`` can take this run's rows — a results file that reads (its
    rows are merged with the new ones), or a new file; not a folder, a device, a torn file."""
    from genie_plugin.bench.rows import read_results
    from genie_plugin.io import writable_target

    target = writable_target(out, "--out")
    writable_target(Path(f"{target}.lock"), "--out (its .lock)")
    if target.exists():
        read_results(target, option="--out")


def scenario_header(scn) -> str:
    """What a run will use, printed before any work: a reader of the log knows what ran."""
    m = markup
    res = f"{scn.resolution} px" if scn.resolution else "the model's native resolution"
    where = f" from {m(scn.root)}" if scn.root else ""
    model = f"{m(scn.model)} --config {m(scn.model_config)}" if scn.model_config else m(scn.model)
    return (
        f"[bold]{m(scn.name)}[/]: {m(scn.dataset)}/{m(scn.split)}{where}, {scn.ways}-way "
        f"{scn.shots}-shot, {scn.queries} queries, {scn.episodes} episodes\n"
        f"  model {model} ({scn.steps} steps, {res}, backend {m(scn.backend)}), backbone "
        f"{m(scn.backbone)} ({scn.view_size} px views)\n"
        f"  strategies {', '.join(m(x) for x in scn.labels)}"
    )


@app.command("run")
@handle_errors
def run(
    scenario: ScenarioArg = None,
    strategy: StrategyOpt = None,
    dataset: DatasetOpt = None,
    split: SplitOpt = None,
    root: RootOpt = None,
    episodes: EpisodesOpt = None,
    ways: WaysOpt = None,
    shots: ShotsOpt = None,
    steps: StepsOpt = None,
    resolution: ResolutionOpt = None,
    guidance: GuidanceOpt = None,
    timestep_shift: ShiftOpt = None,
    guidance_t_min: GuidanceFloorOpt = None,
    backend: ScnBackendOpt = None,
    channels_last: ScnChannelsLastOpt = None,
    model: ScnModelOpt = None,
    lora: LoraOpt = None,
    config: ConfigOpt = None,
    backbone: BackboneScnOpt = None,
    out: Annotated[
        Path, typer.Option(help="Results JSONL (rows replaced per scenario+strategy).")
    ] = Path("out/bench/results.jsonl"),
    cache: CacheOpt = Path("out/bench/cache"),
    device: DeviceOpt = None,
    report: Annotated[
        Path | None,
        typer.Option(help="Also write the HTML report of the results file into this folder."),
    ] = None,
    jobs: Annotated[
        str,
        typer.Option(
            help="Generate and score in this many one-thread processes (CPU): the rows of one "
            "process of one thread, sooner on several cores. 'auto': one per core (at most 8) "
            "on a CPU, 1 on a GPU.",
        ),
    ] = "1",
) -> None:
    """Evaluate strategies on one scenario; every strategy sees the same episodes."""
    from rich.console import Console

    from genie_plugin.bench.leaderboard import genie_unet_rows, merge_rows, unet_cost
    from genie_plugin.bench.runner import run_scenario
    from genie_plugin.bench.scenario import preflight

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
        resolution=resolution,
        guidance=guidance,
        timestep_shift=timestep_shift,
        guidance_t_min=guidance_t_min,
        backend=backend,
        channels_last=channels_last,
        model=model,
        lora=tuple(lora) if lora else None,
        model_config=config,
        backbone=backbone,
    )
    console = Console(highlight=False)
    console.print(scenario_header(scn), soft_wrap=True)
    preflight(scn)
    check_writable(out.parent, "--out")
    check_writable(cache, "--cache")
    check_results_out(out)
    if report is not None:
        check_out_dir(report, "--report")
    jobs = parse_jobs(jobs, device)
    if jobs > 1:
        check_cpu_jobs(jobs, device)
        console.print(f"  {jobs} one-thread processes (--jobs)", soft_wrap=True)
    scn, gen = resolve_auto_backend(scn, device, console, threads=1 if jobs > 1 else None)
    from genie_plugin.progress import make_progress

    with make_progress(console=console) as bar:
        tasks = {s: bar.add_task(s, total=scn.episodes, info="") for s in scn.labels}

        def advance(sname, done, total, cached):
            info = _cache_info(cached) if cached else ""
            bar.update(tasks[sname], completed=done, info=info)

        if jobs > 1:
            from genie_plugin.bench.parallel import run_parallel

            def advance_counts(sname, done, total, counts):
                bar.update(tasks[sname], completed=done, info=_counts_info(counts))

            pstats: dict = {}
            rows = run_parallel(
                scn, jobs=jobs, cache_dir=cache, out=out, device=device, progress=advance_counts,
                stats=pstats,
            )  # fmt: skip
            if pstats.get("workers_lost"):
                console.print(
                    f"{pstats['workers_lost']} worker process(es) died; the others redid "
                    f"{pstats['taken_over']} of their blocks"
                )
        else:
            rows = run_scenario(
                scn,
                cache_dir=cache,
                progress=advance,
                device=device,
                on_row=lambda row: merge_rows(out, [row]),  # kept as soon as scored
                generator=gen,
            )
    genie_rows = genie_unet_rows(rows)
    for r in rows:
        if r["status"] == "ok":
            cost = ""
            if r.get("unet_rows"):
                per_ep, ratio = unet_cost(r, genie_rows)
                cost = f", {per_ep:.0f} UNet rows/episode"
                if ratio is not None:
                    cost += f" = {ratio:.2f}× genie"
            if r.get("cache_repaired"):
                cost += f", {r['cache_repaired']} bad cache entries regenerated"
            console.print(
                f"{markup(r['strategy']):>14}: {r['mean']:.2f} ± {r['ci95']:.2f}  "
                f"({r['wall_s']} s{cost})"
            )
        else:
            console.print(f"{markup(r['strategy']):>14}: [red]failed[/] {markup(r['error'])}")
    console.print(f"results: {markup(out)}", soft_wrap=True)
    if report is not None:
        from genie_plugin.bench.report import build_report

        page = build_report(out, report, cache_dir=cache, scenario=scn, device=device)
        console.print(f"report: {markup(page)}", soft_wrap=True)


@app.command("generate")
@handle_errors
def generate(
    scenario: ScenarioArg = None,
    strategy: StrategyOpt = None,
    dataset: DatasetOpt = None,
    split: SplitOpt = None,
    root: RootOpt = None,
    episodes: EpisodesOpt = None,
    ways: WaysOpt = None,
    shots: ShotsOpt = None,
    steps: StepsOpt = None,
    resolution: ResolutionOpt = None,
    guidance: GuidanceOpt = None,
    timestep_shift: ShiftOpt = None,
    guidance_t_min: GuidanceFloorOpt = None,
    backend: ScnBackendOpt = None,
    channels_last: ScnChannelsLastOpt = None,
    model: ScnModelOpt = None,
    lora: LoraOpt = None,
    config: ConfigOpt = None,
    backbone: BackboneScnOpt = None,
    cache: CacheOpt = Path("out/bench/cache"),
    max_batch: MaxBatchOpt = "64",
    device: DeviceOpt = None,
    shard: Annotated[
        str | None,
        typer.Option(
            help="This process's rank as I/N (e.g. a Slurm array: "
            "--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT). Default: SLURM_PROCID/"
            "SLURM_NTASKS under srun, RANK/WORLD_SIZE under torchrun or accelerate launch, else "
            "0/1. It only picks where this process starts: blocks are claimed, so any number "
            "of processes, started at any time, finish the scenario together.",
        ),
    ] = None,
    lease: Annotated[
        float,
        typer.Option(
            help="Seconds after which a block claimed by a process that stopped renewing it "
            "(a lost node) is taken over; a dead process on the same host is taken over at once.",
        ),
    ] = 120.0,
) -> None:
    """Fill the augmentation cache for a whole scenario without scoring it.

    Any number of processes on any number of GPUs and nodes may run this over one shared cache
    (a Slurm array, `srun`, `torchrun`, `accelerate launch`, or by hand with --shard): each claims
    the next free block of episodes and renders all of its strategies, with no process group,
    so a lost rank hangs nobody. The cache is the same as one process's. Every option that
    changes an image is a scenario setting that `genie bench run` reads the same way.
    """
    from rich.console import Console

    from genie_plugin.bench.claims import parse_rank
    from genie_plugin.bench.runner import generate_scenario
    from genie_plugin.bench.scenario import preflight
    from genie_plugin.progress import make_progress

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
        resolution=resolution,
        guidance=guidance,
        timestep_shift=timestep_shift,
        guidance_t_min=guidance_t_min,
        backend=backend,
        channels_last=channels_last,
        model=model,
        lora=tuple(lora) if lora else None,
        model_config=config,
        backbone=backbone,
    )
    rank, world, local, source = parse_rank(shard)
    if lease <= 0:
        raise typer.BadParameter(f"{lease} must be > 0 seconds", param_hint="--lease")
    dev = device
    if dev is None and local is not None:
        import torch

        if torch.cuda.is_available():  # one GPU per local rank
            dev = f"cuda:{local % torch.cuda.device_count()}"
    console = Console(highlight=False)
    tag = f"[{rank}/{world}] " if world > 1 else ""
    console.print(scenario_header(scn), soft_wrap=True)
    if world > 1:
        console.print(f"  rank {rank} of {world} ({markup(source)}), device {dev or 'default'}")
    preflight(scn)
    check_max_batch(max_batch)
    check_writable(cache, "--cache")
    # each process times (or reads) the choice; the model it loaded for that is the one it uses
    scn, gen = resolve_auto_backend(scn, dev, console)
    with make_progress(console=console) as bar:
        task = bar.add_task(f"{tag}{scn.name} blocks", total=None, info="")

        def advance(done, total, cached):
            bar.update(task, completed=done, total=total, info=_cache_info(cached))

        stats = generate_scenario(
            scn,
            cache_dir=cache,
            process_index=rank,
            num_processes=world,
            device=dev,
            max_batch=max_batch,
            progress=advance,
            generator=gen,
            lease_s=lease,
        )
    took = f", {stats['taken_over']} taken over from stopped ranks" if stats["taken_over"] else ""
    console.print(
        f"{markup(tag)}{stats['blocks']} of {stats['of_blocks']} blocks{took}: "
        f"{stats['images']} images ({stats['generated']} generated, {stats['hits']} from the "
        f"cache, {stats.get('repaired', 0)} bad cache entries regenerated; "
        f"{stats.get('unet_rows', 0)} UNet rows from scratch) in {markup(cache)}",
        soft_wrap=True,
    )


def _cache_info(cached) -> str:
    return _counts_info((cached.generated, cached.hits, cached.repaired))


def _counts_info(counts) -> str:
    if not counts:
        return ""
    generated, hits, repaired = counts
    info = f"generated {generated}, cached {hits}"
    return info + (f", repaired {repaired}" if repaired else "")


def parse_jobs(value: str, device) -> int:
    """``--jobs``: a count of at least 1, or ``auto`` (see :func:`auto_jobs`)."""
    from genie_plugin.bench.parallel import auto_jobs
    from genie_plugin.errors import ConfigError

    if value.strip().lower() == "auto":
        return auto_jobs(device)
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(f"--jobs {value!r}: give a number of processes (1 or more) or 'auto'")
    return n


def check_cpu_jobs(jobs: int, device) -> None:
    """--jobs > 1 splits CPU cores; on a GPU each process would load its own model copy."""
    from genie_plugin.bench.parallel import runs_on_gpu
    from genie_plugin.errors import ConfigError

    if runs_on_gpu(device):
        raise ConfigError(
            f"--jobs {jobs} runs strategies in CPU processes; on a GPU use --jobs 1 (or fill "
            "the cache with `genie bench generate` under accelerate first)"
        )


@app.command("leaderboard")
@handle_errors
def leaderboard(
    results: Annotated[list[Path], typer.Argument(help="Result JSONL files.")],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Markdown path; .csv and .png are written beside it. Default: leaderboard.md "
            "beside the first results file."
        ),
    ] = None,
) -> None:
    """Render Markdown, CSV and a bar chart from result files (never over an input)."""
    from genie_plugin.bench.leaderboard import write_leaderboard

    if out is None:
        out = results[0].with_name("leaderboard.md")
    for kind, path in write_leaderboard(results, out).items():
        typer.echo(f"{kind}: {one_line(path)}")


@app.command("report")
@handle_errors
def report(
    results: Annotated[Path, typer.Argument(help="Results JSONL of a run.")],
    out: Annotated[Path, typer.Option(help="Folder for index.html and its images.")],
    cache: Annotated[
        Path | None,
        typer.Option(help="The run's augmentation cache: the gallery reads its images from it."),
    ] = None,
    scenario: Annotated[
        Path | None,
        typer.Option(help="Scenario file of the run, where the results do not record it."),
    ] = None,
    gallery_episodes: Annotated[
        int, typer.Option(min=0, help="Episodes in the gallery (chosen by seed; 0: none).")
    ] = 2,
    quality_episodes: Annotated[
        int, typer.Option(min=0, help="Episodes whose images the quality table judges.")
    ] = 5,
    oracle: Annotated[
        str,
        typer.Option(
            help="Judge of label consistency: auto (the dataset's oracle, if one is installed), "
            "none, or an entry point name of genie_plugin.oracles."
        ),
    ] = "auto",
    device: DeviceOpt = None,
) -> None:
    """Write a self-contained HTML report (leaderboard, paired differences, gain against cost,
    gallery, provenance) that opens from disk."""
    from genie_plugin.bench.report import build_report
    from genie_plugin.bench.rows import read_results
    from genie_plugin.bench.scenario import Scenario
    from genie_plugin.errors import ConfigError

    read_results(results, option="RESULTS")  # before anything is made: a bad file, one line
    if cache is not None and not cache.is_dir():
        raise ConfigError(f"--cache {one_line(cache)}: no such cache folder")
    check_out_dir(out)
    scn = Scenario.load(scenario) if scenario else None
    page = build_report(
        results, out, cache_dir=cache, scenario=scn, gallery_episodes=gallery_episodes,
        quality_episodes=quality_episodes, oracle=oracle, device=device,
        progress=lambda msg: typer.echo(msg, err=True),
    )  # fmt: skip
    typer.echo(f"report: {one_line(page)}")


@app.command("compare")
@handle_errors
def compare(
    committed: Annotated[Path, typer.Argument(help="Committed results JSONL.")],
    rerun: Annotated[Path, typer.Argument(help="Results JSONL of a rerun (empty cache).")],
    prefix: Annotated[
        bool,
        typer.Option(
            "--prefix",
            help="The rerun ran only the first n episodes (--episodes n): compare its settings, "
            "status and per-episode accuracies with the committed first n.",
        ),
    ] = False,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="Say, per row, whether it equals the committed one episode for episode and, "
            "if not, by how much and which recorded settings differ (backend, CPU kernels, "
            "threads, versions); always exit 0.",
        ),
    ] = False,
) -> None:
    """Check that a rerun reproduces committed result rows: means, CIs, per-episode accuracies,
    episode-list hash and generation counts (with --prefix: the first n episodes). Exit 1
    listing what differs."""
    from genie_plugin.bench.leaderboard import compare_results, explain_differences
    from genie_plugin.bench.rows import read_results

    rows = read_results(rerun, option="RERUN")
    board = read_results(committed, option="COMMITTED")
    if explain:
        typer.echo(f"{one_line(rerun)} against the committed board {one_line(committed)}:")
        for line in explain_differences(board, rows):
            typer.echo(f"  {one_line(line)}")
        return
    diffs = compare_results(board, rows, prefix=prefix)
    for d in diffs:
        typer.echo(d)
    if diffs:
        raise typer.Exit(1)
    what = f"the first {rows[0]['episodes']} episodes of " if prefix and rows else ""
    typer.echo(f"{rerun} reproduces {what}{committed} ({len(rows)} rows)")


@app.command("study")
@handle_errors
def study(
    name: Annotated[
        str | None, typer.Argument(help="A shipped study (see --list) or a study JSON file.")
    ] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the shipped studies.")] = False,
    episodes: EpisodesOpt = None,
    smoke: Annotated[
        bool, typer.Option(help="One episode: checks that the study runs (CI), no answer.")
    ] = False,
    dataset: Annotated[
        str | None,
        typer.Option(help="Run the study on another dataset (with --root, --model, --backbone)."),
    ] = None,
    root: RootOpt = None,
    model: ScnModelOpt = None,
    backbone: BackboneScnOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for results.jsonl, summary.json, summary.md, scenario*.json "
            "(default: out/studies/NAME)."
        ),
    ] = None,
    cache: CacheOpt = Path("out/bench/cache"),
    device: DeviceOpt = None,
    jobs: Annotated[str, typer.Option(help="As `genie bench run --jobs`.")] = "1",
) -> None:
    """Run a shipped study on the same episodes for every strategy and print its paired Δs
    (a study with a validation selection runs its candidates on validation episodes first)."""
    import json

    from genie_plugin.bench.leaderboard import load_rows
    from genie_plugin.bench.runner import load_split
    from genie_plugin.bench.study import (
        choose,
        combine,
        load_study,
        markdown,
        study_names,
        summarise,
        variant_label,
    )
    from genie_plugin.bench.study_analysis import analyse
    from genie_plugin.bench.study_report import write_page
    from genie_plugin.errors import ConfigError
    from genie_plugin.io import atomic_write_text

    if list_ or name is None:
        for n in study_names():
            typer.echo(f"{n}: {load_study(n).question}")
        return
    st = load_study(name)
    overrides = {k: v for k, v in (("dataset", dataset), ("root", root), ("model", model),
                                   ("backbone", backbone)) if v is not None}  # fmt: skip
    if dataset and not dataset.startswith("shapes") and (model is None or backbone is None):
        raise ConfigError(
            f"--dataset {dataset}: the study's embedded model and backbone are for the shapes "
            "sets only; pass --model and --backbone too"
        )
    scns = [(v, st.make_scenario(episodes=episodes, smoke=smoke, variant=v, overrides=overrides))
            for v in st.variants]  # fmt: skip  # every scenario checked before any work
    folder = out or Path("out/studies") / (st.name + ("-smoke" if smoke else ""))
    folder.mkdir(parents=True, exist_ok=True)
    results = folder / "results.jsonl"
    typer.echo(f"study {st.name}: {st.question}")

    def run_scenario(scn) -> list[dict]:
        scn_file = folder / f"scenario-{scn.name}.json"
        atomic_write_text(scn_file, json.dumps(scn.to_dict(), indent=2) + "\n")
        run(scenario=scn_file, strategy=None, dataset=None, split=None, root=None,
            episodes=None, ways=None, shots=None, steps=None, resolution=None, guidance=None,
            timestep_shift=None, guidance_t_min=None, backend=None, channels_last=None,
            model=None, lora=None, config=None, backbone=None, out=results, cache=cache,
            device=device, report=None, jobs=jobs)  # fmt: skip
        # rows of this scenario's strategies only: an earlier run of the study may have had
        # others under the same scenario name (kept in the file, not summarised)
        labels = set(scn.labels)
        return [r for r in load_rows([results])
                if r["scenario"] == scn.name and r["strategy"] in labels]  # fmt: skip

    parts = []
    for variant, scn in scns:
        label = variant_label(variant)
        if label:
            typer.echo(f"variant {label}: scenario {scn.name}")
        n_classes = len(load_split(scn).class_names)
        if scn.ways > n_classes:  # e.g. 20-way on the shapes sets' 8 novel classes
            why = f"{scn.dataset}/{scn.split} has {n_classes} classes, {scn.ways} ways asked"
            typer.echo(f"variant {label} not run: {why}")
            parts.append({"variant": label, "skipped": why})
            continue
        selection = None
        val = st.selection_scenario(scn)
        if val is not None:
            typer.echo(f"choosing {st.select['as']} among {', '.join(st.select['among'])} "
                       f"on {val.episodes} {val.split} episodes ({val.ways}-way)")  # fmt: skip
            selection = choose(st, run_scenario(val))
            typer.echo(f"chosen on {val.split}: {selection['chosen']}")
        rows = run_scenario(scn)
        part = {"variant": label, **summarise(st, rows, selection)}
        for a in st.analyses:
            n = 1 if smoke else int(a.get("episodes", 10))
            typer.echo(f"analysis {a['kind']} of {a['strategy']} on {n} episode(s)")
            sub = folder / (variant_label(variant, sep="-") or ".")
            res = analyse(a["kind"], scn, rows, cache, sub, strategy=a["strategy"], episodes=n,
                          device=device)  # fmt: skip
            part.setdefault("analyses", []).append({**res, "folder": sub.name if label else ""})
        parts.append(part)
    summary = combine(st, parts)
    atomic_write_text(folder / "summary.json", json.dumps(summary, indent=1) + "\n")
    atomic_write_text(folder / "summary.md", markdown(summary))
    page = write_page(summary, folder)
    typer.echo(markdown(summary))
    typer.echo(f"summary: {folder / 'summary.md'}; page: {page}")
