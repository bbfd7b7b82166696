"""Benchmark data through learn2learn: dataset files, splits, materialised episodes.

Everything here that imports learn2learn goes through :func:`require_learn2learn` (it is a
specially built install, and importing it prints gym's banner). The learn2learn-facing plugin
(tasksets that augment) lives in :mod:`genie_plugin.l2l`, on top of this.
"""

from __future__ import annotations


def require_learn2learn():
    import contextlib
    import io
    import warnings

    try:
        # learn2learn imports gym, which prints a deprecation banner on import: keep it quiet
        with (
            contextlib.redirect_stderr(io.StringIO()),
            contextlib.redirect_stdout(io.StringIO()),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")
            import learn2learn
    except ImportError as exc:  # pragma: no cover - depends on the environment
        from genie_plugin.errors import GenieError

        raise GenieError(
            f"learn2learn is not installed ({exc}); run scripts/install_learn2learn.sh "
            "(its sdist does not build on Python >= 3.11 without regenerating the C files)"
        ) from None
    return learn2learn
