"""Everything that imports learn2learn lives here (it is an optional, specially built install)."""

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


def get_tasksets(*args, **kwargs):
    """``learn2learn.vision.benchmarks.get_tasksets`` with a strategy (see ``l2l.plugin``)."""
    from genie_plugin.l2l.plugin import get_tasksets as _get

    return _get(*args, **kwargs)
