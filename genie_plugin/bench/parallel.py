"""``genie bench run --jobs N``: a scenario generated and scored in N one-thread processes.

Work is split by episode block (the runner's fixed work units of ``UNIT_EPISODES`` episodes)
and claimed as ``bench generate``'s ranks claim it (:class:`~genie_plugin.bench.claims.
BlockClaims`, one implementation for both, in a claims folder private to this run): a worker
takes the next free block from its own starting point and, for every strategy in the
scenario's order, renders its generated images (one batch, as the runner does) and scores its
episodes. A worker that dies (killed, out of memory) leaves its claim to a dead pid, which the
others take over at once: its blocks are redone, the run completes.
So what one strategy reuses of another's images — GeNIe-Ada's r = 0.8 candidates are GeNIe's
outputs, genie_ada_lite's outputs and r = 0.5 candidates are GeNIe-Ada's — is in the cache
when it asks, as in one process; every episode's images and features come from the same
batches; and ``--jobs N`` gives the rows of a one-thread ``--jobs 1`` run bit for bit,
generation counts included (one thread is the setting the committed leaderboard is made and
checked with). The parent assembles each strategy's row from its blocks and writes it when the
last block is in; a killed run keeps its images in the cache and resumes from there.

Why processes: on a small CPU one process of several threads leaves cores idle (a cold embedded
run used 1.4 of 2 cores: much of a run is single-threaded Python, PNG coding, logistic
regressions and small batches). Measured on the main job:
``benchmarks/results/main_job_2026-12-02.json``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import secrets
import shutil
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def runs_on_gpu(device) -> bool:
    """Whether a run with ``--device device`` (None: the default) generates on a GPU."""
    import torch

    return torch.device(device).type == "cuda" if device else torch.cuda.is_available()


def auto_jobs(device) -> int:
    """``--jobs auto``: one process per usable core on a CPU (at most 8), one on a GPU."""
    if runs_on_gpu(device):
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def _worker(scn_dict: dict, cache: str, device, claims_dir: str, index: int, n: int, conn) -> None:
    """Claim blocks until every block is done; one message per (strategy, block), on a pipe
    of this worker's own: a worker killed mid-message breaks only its own pipe (a shared
    queue's write lock, held by a killed writer, would block every other worker for good)."""
    import torch

    # BLAS pools got one thread from the environment at spawn (run_parallel); torch's too
    torch.set_num_threads(1)
    try:
        taken_over = _work(scn_dict, Path(cache), device, Path(claims_dir), index, n, conn.send)
        conn.send(("done", taken_over))
    except KeyboardInterrupt:
        conn.send(("stopped", index))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, one line
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def _work(scn_dict: dict, cache: Path, device, claims_dir: Path, index: int, n: int, send) -> int:
    from genie_plugin.bench.claims import BlockClaims, rank_start
    from genie_plugin.bench.runner import (
        MAX_BATCH,
        UNIT_EPISODES,
        cache_counts,
        describe_strategy,
        episode_unit,
        failed_fields,
        scenario_episodes,
        scenario_generator,
        score_unit,
        unit_inputs,
    )
    from genie_plugin.bench.scenario import Scenario
    from genie_plugin.data.episodes import episodes_hash
    from genie_plugin.diffusion.cache import AugmentationCache, CachedGenerator
    from genie_plugin.fewshot.backbones import MemoEmbedder, load_backbone

    parent = os.getppid()
    scn = Scenario.from_dict(scn_dict)
    data, episodes = scenario_episodes(scn)
    send(("episodes", episodes_hash(episodes)))
    blocks = [episode_unit(e, scn.episodes) for e in range(0, scn.episodes, UNIT_EPISODES)]
    embed = MemoEmbedder(load_backbone(scn.backbone, device=device), store=cache / "features")
    store = AugmentationCache(cache)
    gen = None
    strategies: dict[str, object] = {}
    cached: dict[str, object] = {}
    failed: set[str] = set()
    start = rank_start(index, n, len(blocks))
    with BlockClaims(claims_dir, rank=index) as claims:
        for b in claims.blocks(len(blocks), start=start, poll_s=0.5):
            if os.getppid() != parent:  # the parent died (SIGKILL): its rows are gone, stop
                claims.release(b)
                return claims.taken_over
            block = blocks[b]
            inputs = unit_inputs(scn, data, episodes, block)  # one read for every strategy
            for sname in scn.labels:
                if sname in failed:
                    continue
                t0 = time.perf_counter()
                c = cached.get(sname)
                before = cache_counts(c)
                chosen: Counter = Counter()
                try:
                    if sname not in strategies:
                        strategy, fields = describe_strategy(scn, sname)
                        if strategy.generative:
                            if gen is None:  # weights loaded at the first cache miss
                                gen = scenario_generator(scn, device, lazy=True)
                            fields["model"] = gen.describe()
                            c = cached[sname] = CachedGenerator(gen, store)
                            before = cache_counts(c)
                        strategies[sname] = strategy
                        send(("fields", sname, fields))
                    accs = score_unit(
                        strategies[sname], scn, data, episodes, block, c, embed, MAX_BATCH,
                        chosen, inputs=inputs,
                    )  # fmt: skip
                except Exception as exc:  # noqa: BLE001 - the strategy's row fails, others go on
                    failed.add(sname)
                    send(("failed", sname, failed_fields(exc)))
                    continue
                after = cache_counts(c)
                counts = {k: after[k] - before[k] for k in after} if after else None
                send(("block", sname, b, accs, counts, dict(chosen), time.perf_counter() - t0))
            claims.finish(b)
    return claims.taken_over


class _Rows:
    """A strategy's row as its blocks come in (any order); complete when every episode is."""

    def __init__(self, n_episodes: int) -> None:
        self.n = n_episodes
        self.accs: dict[int, float] = {}
        self.counts: dict[str, int] | None = None
        self.chosen: Counter = Counter()
        self.seconds = 0.0
        self.fields: dict = {}
        self.failure: dict | None = None
        self.blocks: set[int] = set()

    def add(self, b: int, accs: dict, counts: dict | None, chosen: dict, seconds: float) -> None:
        if b in self.blocks:  # redone by a worker that took over a dead one's claim: the
            return  # first report stands (the redo read the first one's images as cache hits)
        self.blocks.add(b)
        self.accs.update(accs)
        if counts is not None:
            self.counts = {k: (self.counts or {}).get(k, 0) + v for k, v in counts.items()}
        self.chosen.update(chosen)
        self.seconds += seconds

    @property
    def done(self) -> bool:
        return self.failure is not None or len(self.accs) == self.n

    def row(self, header: dict) -> dict:
        from genie_plugin.bench.runner import row_result

        row = {**header, **self.fields}
        if self.failure is not None:
            row.update(self.failure)
        else:
            accs = [self.accs[e] for e in range(self.n)]
            row.update(row_result(accs, self.counts, self.chosen))
            if self.counts is not None:
                row["vae_fp32_reruns"] = 0  # CPU workers run fp32: no fp16 overflow to redo
        # worker-seconds spent on this strategy, summed over processes
        row["wall_s"] = round(self.seconds, 1)
        return dict(sorted(row.items()))


def _next_message(ends: list, timeout: float):
    """The next message from any worker's pipe, or None after ``timeout``; a pipe whose
    worker ended (EOF) is dropped from ``ends``."""
    from multiprocessing.connection import wait

    for end in wait(ends, timeout=timeout):
        try:
            return end.recv()
        except (EOFError, OSError):
            ends.remove(end)
    return None


def run_parallel(
    scn,
    *,
    jobs: int,
    cache_dir: Path,
    out: Path,
    device=None,
    progress: Callable | None = None,
    stats: dict | None = None,
) -> list[dict]:
    """Generate and score ``scn`` in ``jobs`` one-thread processes; rows in scenario order.

    ``progress(strategy, episodes_done, total, (generated, cached, repaired))`` after each
    block; each row is merged into ``out`` as soon as its last block is in. ``stats`` gets
    ``taken_over`` (claims of dead workers taken over) and ``workers_lost``."""
    from genie_plugin.bench.leaderboard import merge_rows
    from genie_plugin.bench.runner import UNIT_EPISODES, claims_folder, episode_unit, row_header
    from genie_plugin.errors import GenieError

    blocks = [episode_unit(e, scn.episodes) for e in range(0, scn.episodes, UNIT_EPISODES)]
    n = max(1, min(jobs, len(blocks)))
    ctx = mp.get_context("spawn")  # a fresh interpreter: no inherited torch threads or locks
    pipes = [ctx.Pipe(duplex=False) for _ in range(n)]
    # claims private to this run: a killed run's rows are lost with its parent, so another
    # run must not take its blocks as done (the images stay in the cache either way)
    claims_dir = claims_folder(scn, cache_dir, f"run-{os.getpid()}-{secrets.token_hex(4)}")
    procs = [
        ctx.Process(
            target=_worker,
            args=(scn.to_dict(), str(cache_dir), device, str(claims_dir), i, n, pipes[i][1]),
        )
        for i in range(n)
    ]
    # BLAS libraries (numpy's, and scipy's own, loaded later by the logistic regressions) size
    # their thread pools from these when they load: one thread in every worker, else each
    # starts one per core and two workers run L-BFGS 13x slower (measured)
    saved = {v: os.environ.get(v) for v in _THREAD_VARS}
    os.environ.update(dict.fromkeys(_THREAD_VARS, "1"))
    try:
        for p in procs:
            p.daemon = True
            p.start()
        for _, w in pipes:
            w.close()  # the workers hold the write ends: a dead worker's pipe then ends (EOF)
    finally:
        for v, old in saved.items():
            if old is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = old
    state = {s: _Rows(scn.episodes) for s in scn.labels}
    rows: dict[str, dict] = {}
    ep_hash = ""
    errors: list[str] = []
    open_ends = [r for r, _ in pipes]
    taken_over = lost = 0
    try:
        while not all(st.done for st in state.values()):
            # is_alive reaps a dead worker: its pid then reads as dead to the others, who take
            # its claims over at once (a zombie's pid would hold them for a whole lease)
            for p in procs:
                p.is_alive()
            msg = _next_message(open_ends, timeout=0.5)
            if msg is None:
                if not open_ends:
                    dead = [p.exitcode for p in procs if p.exitcode]
                    errors.append(f"every worker process ended (exit codes {dead})")
                    break
                continue
            kind = msg[0]
            if kind == "episodes":
                ep_hash = msg[1]
            elif kind == "fields":
                state[msg[1]].fields = msg[2]
            elif kind in ("block", "failed"):
                sname, st = msg[1], state[msg[1]]
                if kind == "failed":
                    st.failure = msg[2]
                else:
                    st.add(*msg[2:])
                    if progress is not None:
                        c = st.counts
                        counts = (c["generated"], c["hits"], c["repaired"]) if c else None
                        progress(sname, len(st.accs), scn.episodes, counts)
                if st.done and sname not in rows:
                    rows[sname] = st.row(row_header(scn, sname, ep_hash, device, threads=1))
                    merge_rows(Path(out), [rows[sname]])
            elif kind == "done":
                taken_over += msg[1]
            elif kind == "error":  # this worker's blocks go back to the others
                errors.append(msg[1])
            elif kind == "stopped":
                raise KeyboardInterrupt
        deadline = time.monotonic() + 5.0  # every row is in: the workers are finishing
        while open_ends and time.monotonic() < deadline:
            msg = _next_message(open_ends, timeout=0.5)
            if msg is not None and msg[0] == "done":
                taken_over += msg[1]
        lost = sum(1 for p in procs if not p.is_alive() and p.exitcode != 0)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join(timeout=10)
        shutil.rmtree(claims_dir, ignore_errors=True)
    if stats is not None:
        stats["taken_over"] = taken_over
        stats["workers_lost"] = lost
    if len(rows) < len(scn.labels):
        why = errors[0] if errors else "a worker process died"
        raise GenieError(f"bench run --jobs {jobs}: {why}; the finished rows are in {out}")
    return [rows[s] for s in scn.labels if s in rows]
