"""The ``genie`` command line (installed as the ``genie_cli`` package)."""

from __future__ import annotations

INTERRUPTED = "interrupted: finished results and cached images are kept; rerun to resume"


def run() -> None:
    """Console-script entry. Commands turn an interrupt into one line and exit code 130 (see
    ``_common.handle_errors``); this catches the ones that land outside a command — while the CLI
    imports, parses or returns — where Python would print a traceback and die by the signal.
    Once the command has ended there is nothing left to stop, so later interrupts are ignored."""
    import signal
    import sys

    code: int | str | None = 0
    try:
        from .main import app

        app()
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        code = 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)
