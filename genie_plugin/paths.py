"""Where the project caches things it builds (tiny models, trained weights, augmentations)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$GENIE_CACHE_DIR``, else ``$XDG_CACHE_HOME/genie_plugin``, else ``~/.cache/genie_plugin``."""
    env = os.environ.get("GENIE_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "genie_plugin"
