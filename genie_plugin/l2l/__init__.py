"""Everything that imports learn2learn lives here (it is an optional, specially built install)."""

from __future__ import annotations


def require_learn2learn():
    try:
        import learn2learn
    except ImportError as exc:  # pragma: no cover - depends on the environment
        from genie_plugin.errors import GenieError

        raise GenieError(
            f"learn2learn is not installed ({exc}); run scripts/install_learn2learn.sh "
            "(its sdist does not build on Python >= 3.11 without regenerating the C files)"
        ) from None
    return learn2learn
