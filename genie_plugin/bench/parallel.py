"""``genie bench run --jobs N``: the strategies of a scenario scored in N one-thread processes.

On a small CPU one process of several threads leaves cores idle (a cold embedded run used 1.4
of 2 cores on average: much of a run is single-threaded Python, and the embedded model's UNet
batches are small; the speed-up itself is not yet measured). Rows do not depend on which other
strategies a process runs (per-episode seeds; the feature memo is per call), and one thread is
the setting the committed leaderboard is made and checked with, so ``--jobs N`` gives the rows
a one-thread ``--jobs 1`` run gives, bit for bit. Each worker merges its rows into the results
file as it scores them (locked, atomic) and reports progress to the parent over a queue.
"""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_mod
from collections.abc import Callable, Sequence
from pathlib import Path

#: Relative cost of a strategy on the embedded benchmark (seconds per 50 episodes, one thread,
#: rounded; `benchmarks/results/embedded-5w1s.jsonl`): what the partition balances.
COSTS = {
    "none": 12,
    "weak": 4,
    "strong": 5,
    "mixup": 5,
    "cutmix": 6,
    "text2image": 124,
    "img2img": 34,
    "img2img_high": 76,
    "genie": 102,
    "genie_ada": 333,
    "genie_ada_lite": 326,
}
UNKNOWN_GENERATIVE, UNKNOWN_OTHER = 150, 5


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


def _worker(scn_dict: dict, group: list[str], cache: str, out: str, device, q) -> None:
    import torch

    from genie_plugin.bench.leaderboard import merge_rows
    from genie_plugin.bench.runner import run_scenario
    from genie_plugin.bench.scenario import Scenario

    torch.set_num_threads(1)
    try:
        scn = Scenario.from_dict({**scn_dict, "strategies": list(group)})

        def progress(sname, done, total, cached):
            counts = (cached.generated, cached.hits, cached.repaired) if cached else None
            q.put(("progress", sname, done, total, counts))

        def on_row(row):
            merge_rows(Path(out), [row])
            q.put(("row", row))

        run_scenario(scn, cache_dir=Path(cache), progress=progress, device=device, on_row=on_row)
        q.put(("done", None))
    except KeyboardInterrupt:
        q.put(("stopped", None))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, one line
        q.put(("error", f"{type(exc).__name__}: {exc}"))


def run_parallel(
    scn,
    *,
    jobs: int,
    cache_dir: Path,
    out: Path,
    device=None,
    progress: Callable | None = None,
) -> list[dict]:
    """Score ``scn``'s strategies in ``jobs`` one-thread processes; rows in scenario order."""
    from genie_plugin.errors import GenieError

    groups = partition(list(scn.strategies), jobs, strategy_cost)
    ctx = mp.get_context("spawn")  # a fresh interpreter: no inherited torch threads or locks
    q = ctx.Queue()
    procs = [
        ctx.Process(
            target=_worker,
            args=(scn.to_dict(), g, str(cache_dir), str(out), device, q),
            daemon=True,
        )
        for g in groups
    ]
    for p in procs:
        p.start()
    rows: list[dict] = []
    errors: list[str] = []
    running = len(procs)
    try:
        while running:
            try:
                msg = q.get(timeout=1.0)
            except queue_mod.Empty:
                if not any(p.is_alive() for p in procs) and q.empty():
                    dead = [p.exitcode for p in procs if p.exitcode]
                    errors.append(f"a worker process died (exit codes {dead})")
                    break
                continue
            kind = msg[0]
            if kind == "progress" and progress is not None:
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
        raise GenieError(f"bench run --jobs {jobs}: {errors[0]}; the finished rows are in {out}")
    order = {s: i for i, s in enumerate(scn.strategies)}
    return sorted(rows, key=lambda r: order.get(r["strategy"], len(order)))
