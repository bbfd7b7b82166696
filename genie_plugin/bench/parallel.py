"""``genie bench run --jobs N``: a scenario generated and scored in N one-thread processes.

Two phases, one pool of workers. **Generate**: episode blocks (the runner's fixed work units of
``UNIT_EPISODES`` episodes) are pulled from a shared queue; a worker renders a block for every
generative strategy in the scenario's order, so what one strategy reuses of another's images
(GeNIe-Ada's r = 0.8 candidates are GeNIe's outputs; genie_ada_lite's outputs are GeNIe-Ada's
candidates) is in the cache when it asks, as in one process: the same batches, the same cache
hits, whichever worker took the block and however many there are. **Score**: after a barrier,
the strategies are split by scoring cost and each worker scores its share from the warm cache;
the generation phase's counts and seconds are added to the rows.

So ``--jobs N`` gives the rows of a one-thread ``--jobs 1`` run, bit for bit (one thread is the
setting the committed leaderboard is made and checked with). Why processes: on a small CPU one
process of several threads leaves cores idle (a cold embedded run used 1.4 of 2 cores: much of
a run is single-threaded Python, PNG coding and small batches). Measured on the main job:
``benchmarks/results/main_job_2026-12-02.json``.
"""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_mod
from collections.abc import Callable, Sequence
from pathlib import Path

#: Relative cost of scoring a strategy from a warm cache (seconds per 50 episodes of the
#: embedded benchmark, one process): what the scoring phase balances. Generation is balanced
#: by the block queue, not by these.
COSTS = {
    "none": 3,
    "weak": 2,
    "strong": 4,
    "mixup": 2,
    "cutmix": 2,
    "text2image": 3,
    "img2img": 2,
    "img2img_high": 2,
    "genie": 2,
    "genie_ada": 4,
    "genie_ada_lite": 4,
}
UNKNOWN_GENERATIVE, UNKNOWN_OTHER = 3, 2


def partition(strategies: Sequence[str], jobs: int, cost: Callable[[str], float]) -> list[list]:
    """Longest-first greedy split of ``strategies`` into at most ``jobs`` groups of similar
    total cost; each group keeps the scenario's order. Pure: no I/O."""
    groups: list[list[str]] = [[] for _ in range(max(1, min(jobs, len(strategies))))]
    loads = [0.0] * len(groups)
    for s in sorted(strategies, key=lambda s: -cost(s)):
        k = loads.index(min(loads))
        groups[k].append(s)
        loads[k] += cost(s)
    order = {s: i for i, s in enumerate(strategies)}
    return [sorted(g, key=order.__getitem__) for g in groups if g]


def strategy_cost(name: str) -> float:
    from genie_plugin.registry import REGISTRY

    if name in COSTS:
        return COSTS[name]
    try:
        return UNKNOWN_GENERATIVE if REGISTRY.create(name).generative else UNKNOWN_OTHER
    except Exception:  # noqa: BLE001 - an unknown name fails in its worker, as a row
        return UNKNOWN_OTHER


def auto_jobs(device) -> int:
    """``--jobs auto``: one process per usable core on a CPU (at most 8), one on a GPU."""
    import os

    import torch

    on_gpu = torch.device(device).type == "cuda" if device else torch.cuda.is_available()
    if on_gpu:
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


#: Per generative strategy, what the generation phase adds up across workers.
_FIELDS = ("generated", "hits", "repaired", "seconds")


def _generate_blocks(scn, strategies, generative, cache, device, tasks, shared, q):
    """The generation phase of one worker: blocks from ``tasks`` until its ``None``."""
    import time

    from genie_plugin.bench.runner import render_unit, scenario_episodes, scenario_generator
    from genie_plugin.diffusion.cache import AugmentationCache, CachedGenerator
    from genie_plugin.fewshot.backbones import MemoEmbedder, load_backbone

    data, episodes = scenario_episodes(scn)
    gen = scenario_generator(scn, device)
    embed = None
    if any(strategies[s].needs_embedder for s in generative):
        # the runner's memo with its store: the scoring phase reads these features back
        embed = MemoEmbedder(load_backbone(scn.backbone, device=device), store=cache / "features")
    store = AugmentationCache(cache)
    cached = {s: CachedGenerator(gen, store) for s in generative}
    failed: set[str] = set()
    while (block := tasks.get()) is not None:
        for k, s in enumerate(generative):
            if s in failed:
                continue
            c = cached[s]
            before = (c.generated, c.hits, c.repaired)
            t0 = time.perf_counter()
            try:
                render_unit(strategies[s], scn, data, episodes, block, c, embed, 64)
            except OSError as exc:
                from genie_plugin.bench.runner import _STOP_ERRNOS

                if exc.errno in _STOP_ERRNOS:
                    raise
                failed.add(s)  # the scoring phase meets the same error and records the row
                continue
            except Exception:  # noqa: BLE001 - as above
                failed.add(s)
                continue
            delta = (c.generated - before[0], c.hits - before[1], c.repaired - before[2])
            with shared.get_lock():
                for j, v in enumerate((*delta, time.perf_counter() - t0)):
                    shared[k * len(_FIELDS) + j] += v
            q.put(("gen", s, len(block), delta))
    return gen


def _worker(scn_dict, group, generative, cache, out, device, tasks, barrier, shared, q) -> None:
    import torch

    from genie_plugin.bench.leaderboard import merge_rows
    from genie_plugin.bench.runner import run_scenario
    from genie_plugin.bench.scenario import Scenario
    from genie_plugin.registry import REGISTRY

    torch.set_num_threads(1)
    try:
        scn = Scenario.from_dict(scn_dict)
        cache = Path(cache)
        gen = None
        if generative:
            strategies = {s: REGISTRY.create(s) for s in generative}
            gen = _generate_blocks(scn, strategies, generative, cache, device, tasks, shared, q)
        barrier.wait()
        prior = {
            s: {f: shared[k * len(_FIELDS) + j] for j, f in enumerate(_FIELDS)}
            for k, s in enumerate(generative)
        }

        def progress(sname, done, total, cached):
            counts = (cached.generated, cached.hits, cached.repaired) if cached else None
            q.put(("progress", sname, done, total, counts))

        def on_row(row):
            merge_rows(Path(out), [row])
            q.put(("row", row))

        if group:
            run_scenario(
                scn,
                cache_dir=cache,
                progress=progress,
                device=device,
                on_row=on_row,
                generator=gen,
                prior=prior,
                strategies=list(group),
            )
        q.put(("done", None))
    except KeyboardInterrupt:
        barrier.abort()
        q.put(("stopped", None))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, one line
        barrier.abort()
        q.put(("error", f"{type(exc).__name__}: {exc}"))


def run_parallel(
    scn,
    *,
    jobs: int,
    cache_dir: Path,
    out: Path,
    device=None,
    progress: Callable | None = None,
    gen_progress: Callable | None = None,
) -> list[dict]:
    """Generate and score ``scn`` in ``jobs`` one-thread processes; rows in scenario order.

    ``progress(strategy, done, total, counts)`` as the runner's, while scoring;
    ``gen_progress(blocks_done, blocks_total, counts)`` while generating (block × strategy
    units; counts: generated, cached, repaired so far, all strategies)."""
    import threading

    from genie_plugin.bench.runner import UNIT_EPISODES, episode_unit
    from genie_plugin.errors import GenieError
    from genie_plugin.registry import REGISTRY

    strategies = list(scn.strategies)
    generative = [s for s in strategies if _generative(REGISTRY, s)]
    blocks = [episode_unit(e, scn.episodes) for e in range(0, scn.episodes, UNIT_EPISODES)]
    groups = partition(strategies, jobs, strategy_cost)
    n = max(len(groups), min(jobs, len(blocks)) if generative else 0)
    groups += [[] for _ in range(n - len(groups))]
    ctx = mp.get_context("spawn")  # a fresh interpreter: no inherited torch threads or locks
    q, tasks = ctx.Queue(), ctx.Queue()
    for b in blocks if generative else []:
        tasks.put(b)
    for _ in range(n):
        tasks.put(None)
    barrier = ctx.Barrier(n)
    shared = ctx.Array("d", len(generative) * len(_FIELDS))
    procs = [
        ctx.Process(
            target=_worker,
            args=(scn.to_dict(), g, generative, str(cache_dir), str(out), device, tasks, barrier,
                  shared, q),
            daemon=True,
        )
        for g in groups
    ]  # fmt: skip
    for p in procs:
        p.start()
    rows: list[dict] = []
    errors: list[str] = []
    running = len(procs)
    units_total = len(blocks) * len(generative)
    units_done, totals = 0, [0, 0, 0]
    try:
        while running:
            try:
                msg = q.get(timeout=1.0)
            except queue_mod.Empty:
                if not any(p.is_alive() for p in procs) and q.empty():
                    dead = [p.exitcode for p in procs if p.exitcode]
                    errors.append(f"a worker process died (exit codes {dead})")
                    break
                if any(p.exitcode for p in procs):  # killed: the others would wait forever
                    threading.Thread(target=barrier.abort, daemon=True).start()
                continue
            kind = msg[0]
            if kind == "gen":
                units_done += 1
                totals = [a + b for a, b in zip(totals, msg[3], strict=True)]
                if gen_progress is not None:
                    gen_progress(units_done, units_total, tuple(totals))
            elif kind == "progress" and progress is not None:
                progress(*msg[1:])
            elif kind == "row":
                rows.append(msg[1])
            elif kind in ("done", "stopped", "error"):
                running -= 1
                if kind == "error":
                    errors.append(msg[1])
                if kind == "stopped":
                    raise KeyboardInterrupt
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join(timeout=10)
    if errors:
        first = next((e for e in errors if "BrokenBarrierError" not in e), errors[0])
        raise GenieError(f"bench run --jobs {jobs}: {first}; the finished rows are in {out}")
    order = {s: i for i, s in enumerate(scn.strategies)}
    return sorted(rows, key=lambda r: order.get(r["strategy"], len(order)))


def _generative(registry, name: str) -> bool:
    try:
        return bool(registry.create(name).generative)
    except Exception:  # noqa: BLE001 - an unknown or broken one fails as a row when scored
        return False
