"""The ``genie`` command line (installed as the ``genie_cli`` package)."""

from __future__ import annotations

INTERRUPTED = "interrupted: finished results and cached images are kept; rerun to resume"


class Stopped(KeyboardInterrupt):
    """SIGTERM (``docker stop``, ``timeout``, Slurm at the time limit) or SIGHUP (a closed
    terminal), raised where the program is, as Ctrl-C is: the same clean stop (finished rows
    kept, workers stopped, one line), exit code 128 + the signal's number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop(signum, frame) -> None:
    raise Stopped(signum)


def exit_code(exc: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP."""
    return 128 + getattr(exc, "signum", 2)


def run() -> None:
    """Console-script entry. Commands turn an interrupt into one line and exit code 130 (see
    ``_common.handle_errors``); this catches the ones that land outside a command — while the CLI
    imports, parses or returns — where Python would print a traceback and die by the signal.
    Once the command has ended there is nothing left to stop, so later interrupts are ignored."""
    import signal
    import sys

    code: int | str | None = 0
    try:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _stop)
        from .main import app

        app()
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt as exc:
        print(INTERRUPTED, file=sys.stderr)
        code = exit_code(exc)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
    sys.exit(code)
