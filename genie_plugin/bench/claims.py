"""Work claimed by file, not dealt by a process group: ranks that share only a filesystem.

A scenario's generation is split into episode blocks (the runner's work units); a rank takes
a block by creating ``<block>.claim`` with ``O_EXCL`` in a folder of the shared cache, renders
it (every generative strategy in scenario order, so GeNIe-Ada finds GeNIe's images) and marks
it ``<block>.done``. Ranks start at different points of the block list (rank-rotated), so they
rarely contend, and a slow rank only holds the blocks it has claimed.

Nothing waits on a process group, so a Slurm array, ``srun``, ``torchrun`` or ``accelerate
launch`` all work and a dead rank hangs nobody: a claim whose owner is gone is taken over —
at once when the owner ran on this host and its pid is dead (a killed shard restarted), else
when its lease ran out (a live owner renews it every ``lease_s / 4`` seconds; a lost node
stops renewing). A block rendered twice (a taken-over claim whose owner was only slow) costs
time, never correctness: the cache is content-addressed and its first writer wins.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

#: Seconds a claim stays valid without renewal (``--lease``): the most a lost node delays.
DEFAULT_LEASE_S = 120.0


class BlockClaims:
    """Claims on blocks ``0..n-1`` in ``folder``, held by this process."""

    def __init__(self, folder: Path, *, rank: int = 0, lease_s: float = DEFAULT_LEASE_S):
        if lease_s <= 0:
            raise ValueError("the claim lease must be > 0 seconds")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.lease_s = float(lease_s)
        self.host = socket.gethostname()
        self.owner = {"host": self.host, "pid": os.getpid(), "rank": rank}
        self.held: set[int] = set()
        self.taken_over = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def _claim_path(self, b: int) -> Path:
        return self.folder / f"{b}.claim"

    def _done_path(self, b: int) -> Path:
        return self.folder / f"{b}.done"

    def is_done(self, b: int) -> bool:
        return self._done_path(b).exists()

    def _stale(self, path: Path) -> bool:
        """Whether the claim at ``path`` may be taken over: its owner is a dead process on this
        host, or it has not been renewed for a lease."""
        try:
            st = path.stat()
            text = path.read_text()
        except FileNotFoundError:
            return True
        except OSError:
            return False
        with contextlib.suppress(ValueError, TypeError, KeyError):
            owner = json.loads(text)
            if owner["host"] == self.host and not _alive(int(owner["pid"])):
                return True
        return time.time() - st.st_mtime > self.lease_s

    def try_claim(self, b: int) -> bool:
        """Take block ``b`` unless it is done or validly claimed by someone else."""
        if self.is_done(b):
            return False
        path = self._claim_path(b)
        for _ in range(2):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                if not self._stale(path):
                    return False
                # rename is atomic: of several ranks taking over one claim, one moves it
                aside = path.with_name(f"{path.name}.stale-{secrets.token_hex(4)}")
                try:
                    os.rename(path, aside)
                except FileNotFoundError:
                    continue  # another rank took it over first: race it for the new claim
                with contextlib.suppress(OSError):
                    os.unlink(aside)
                self.taken_over += 1
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(json.dumps(self.owner))
            if self.is_done(b):  # finished between our check and the claim
                with contextlib.suppress(OSError):
                    path.unlink()
                return False
            with self._lock:
                self.held.add(b)
            return True
        return False

    def finish(self, b: int) -> None:
        """Mark ``b`` done (atomically) and drop the claim."""
        from genie_plugin.io import atomic_write_text

        atomic_write_text(self._done_path(b), json.dumps({**self.owner, "t": time.time()}))
        with self._lock:
            self.held.discard(b)
        with contextlib.suppress(OSError):
            self._claim_path(b).unlink()

    def release(self, b: int) -> None:
        """Give ``b`` back unfinished (an error in this rank): another rank may take it now."""
        with self._lock:
            self.held.discard(b)
        with contextlib.suppress(OSError):
            self._claim_path(b).unlink()

    def _renew(self) -> None:
        while not self._stop.wait(self.lease_s / 4):
            with self._lock:
                held = list(self.held)
            for b in held:
                with contextlib.suppress(OSError):
                    os.utime(self._claim_path(b))

    def __enter__(self) -> BlockClaims:
        self._beat = threading.Thread(target=self._renew, daemon=True, name="claim-renewal")
        self._beat.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for b in list(self.held):  # an error or a signal: give the blocks back at once
            self.release(b)

    def blocks(
        self, n: int, *, start: int = 0, poll_s: float = 2.0, wait: bool = True
    ) -> Iterator[int]:
        """Yield blocks this process claimed, from ``start`` around the list, until every
        block is done; the caller calls :meth:`finish` on each. With ``wait`` the blocks others
        hold are waited for (and taken over once stale), else it returns when none is free."""
        order = [(start + i) % n for i in range(n)] if n else []
        while True:
            pending = [b for b in order if not self.is_done(b)]
            if not pending:
                return
            took = False
            for b in pending:
                if self.try_claim(b):
                    took = True
                    yield b
            if not took:
                if not wait:
                    return
                time.sleep(poll_s)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def rank_start(rank: int, world: int, n_blocks: int) -> int:
    """Where rank ``rank`` of ``world`` starts in the block list (spread evenly)."""
    return (rank * n_blocks) // max(world, 1) if n_blocks else 0


#: Where launchers put a process's rank: (rank, world size, local rank, launcher), first match.
_LAUNCHERS = (
    ("RANK", "WORLD_SIZE", "LOCAL_RANK", "torchrun / accelerate launch"),
    ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "Slurm"),
)


def parse_rank(shard: str | None, environ=None) -> tuple[int, int, int | None, str]:
    """(rank, world size, local rank or None, where they came from): ``--shard I/N`` if given,
    else a launcher's environment (a world of one is ignored), else (0, 1). Bad values raise a
    one-line error naming the option or variable; no process group is ever formed."""
    from genie_plugin.errors import ConfigError

    env = os.environ if environ is None else environ

    def number(name: str) -> int:
        raw = env.get(name, "")
        if not raw.strip().isdigit():
            raise ConfigError(f"{name}={raw!r} is not a non-negative integer")
        return int(raw)

    def local_rank() -> int | None:
        for name in ("LOCAL_RANK", "SLURM_LOCALID"):
            if env.get(name, "").strip().isdigit():
                return int(env[name])
        return None

    if shard is not None:
        parts = shard.split("/")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise ConfigError(f"--shard {shard!r}: expected I/N (0 <= I < N), e.g. --shard 0/4")
        i, n = (int(p) for p in parts)
        if n < 1 or not 0 <= i < n:
            raise ConfigError(f"--shard {shard!r}: I must be in 0..N-1 and N >= 1")
        return i, n, local_rank(), "--shard"
    for rank_var, world_var, local_var, who in _LAUNCHERS:
        if world_var not in env:
            continue
        world = number(world_var)
        if world <= 1:
            continue
        if rank_var not in env:
            raise ConfigError(
                f"{world_var}={world} is set but {rank_var} is not: run under {who}, pass "
                f"--shard I/{world}, or unset {world_var}"
            )
        rank = number(rank_var)
        if rank >= world:
            raise ConfigError(f"{rank_var}={rank} is not below {world_var}={world}")
        local = number(local_var) if local_var in env else None
        return rank, world, local, f"{who}: {rank_var}/{world_var}"
    return 0, 1, None, "one process"
