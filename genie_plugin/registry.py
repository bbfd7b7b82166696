"""A small strict strategy registry with entry-point plugins.

Names are explicit snake_case; registering a name twice raises; an unknown name raises with the
list of known ones. Third-party strategies come from the entry-point group
``genie_plugin.strategies`` and are read on first lookup (not at import), each loaded on its own
so a broken plugin is reported by name without breaking the others.
``GENIE_DISABLE_PLUGIN_AUTOLOAD=1`` gives the built-ins only. Built-ins are declared through the
same entry points, in this project's pyproject.toml: the one list of them.
"""

from __future__ import annotations

import fnmatch
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from genie_plugin.errors import ConfigError, UnknownNameError

ENTRY_POINT_GROUP = "genie_plugin.strategies"
DISABLE_ENV = "GENIE_DISABLE_PLUGIN_AUTOLOAD"
DIST_NAME = "genie-fewshot"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class StrategyEntry:
    """A registered strategy factory and where it came from (for leaderboard rows)."""

    name: str
    factory: Callable[..., Any]
    distribution: str
    version: str
    target: str

    def create(self, config=None, **overrides):
        return self.factory(config, **overrides)


def _dist_name(ep) -> str:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else "<unknown>"


def _dist_version(ep) -> str:
    dist = getattr(ep, "dist", None)
    return dist.version if dist is not None else ""


def _own_version() -> str:
    from genie_plugin import __version__

    return __version__


class Registry:
    def __init__(self, group: str = ENTRY_POINT_GROUP) -> None:
        self.group = group
        self._entries: dict[str, StrategyEntry] = {}
        self._broken: dict[str, str] = {}
        self._loaded = False
        self._lock = threading.RLock()

    # -- registration -------------------------------------------------------------------
    def register(
        self,
        name: str,
        factory: Callable[..., Any],
        *,
        distribution: str = "<runtime>",
        version: str = "",
        target: str = "",
    ) -> StrategyEntry:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(f"strategy name must be snake_case (a-z, 0-9, _), got {name!r}")
        self._autoload()  # so a runtime name clashing with a built-in/plugin raises here
        with self._lock:
            if name in self._entries:
                prev = self._entries[name]
                raise ConfigError(
                    f"strategy {name!r} is already registered (by {prev.distribution} "
                    f"{prev.target}); pick another name"
                )
            entry = StrategyEntry(name, factory, distribution, version, target or repr(factory))
            self._entries[name] = entry
            return entry

    def unregister(self, name: str) -> None:
        with self._lock:
            self._entries.pop(name, None)

    # -- discovery ----------------------------------------------------------------------
    def _autoload(self) -> None:
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            version = _own_version()
            builtins_only = os.environ.get(DISABLE_ENV, "").strip() not in ("", "0")
            eps = [(ep, _dist_name(ep)) for ep in metadata.entry_points(group=self.group)]
            if not any(dist == DIST_NAME for _, dist in eps) and self.group == ENTRY_POINT_GROUP:
                raise ConfigError(
                    "no built-in strategies: genie-fewshot's entry points are missing (a source "
                    "tree that was never installed); run `pip install -e .` in the checkout"
                )
            # built-ins first, so a plugin reusing a built-in name is reported, not preferred
            for ep, dist_name in sorted(eps, key=lambda e: e[1] != DIST_NAME):
                if builtins_only and dist_name != DIST_NAME:
                    continue
                try:
                    obj = ep.load()
                except Exception as exc:  # a plugin must not break the others
                    if dist_name == DIST_NAME:
                        raise
                    self._broken[ep.name] = (
                        f"plugin {ep.name!r} from {dist_name} ({ep.value}) failed to load: "
                        f"{type(exc).__name__}: {exc}"
                    )
                    continue
                try:
                    self.register(
                        ep.name,
                        obj,
                        distribution=dist_name,
                        version=version if dist_name == DIST_NAME else _dist_version(ep),
                        target=ep.value,
                    )
                except ConfigError as exc:  # a plugin's name clashes with a registered one
                    self._broken.setdefault(
                        ep.name, f"plugin {ep.name!r} from {dist_name} ({ep.value}): {exc}"
                    )

    def reload(self) -> None:
        """Forget plugin discovery (tests, or after installing a plugin in-process)."""
        with self._lock:
            self._entries.clear()
            self._broken.clear()
            self._loaded = False

    # -- lookup -------------------------------------------------------------------------
    def get(self, name: str) -> StrategyEntry:
        self._autoload()
        try:
            return self._entries[name]
        except KeyError:
            pass
        if name in self._broken:
            raise UnknownNameError(self._broken[name])
        raise UnknownNameError(
            f"unknown strategy {name!r}; known strategies: {', '.join(sorted(self._entries))}"
        )

    def create(self, name: str, config=None, **overrides):
        return self.get(name).create(config, **overrides)

    def names(self, pattern: str = "*") -> list[str]:
        self._autoload()
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n, pattern))

    def broken(self) -> dict[str, str]:
        self._autoload()
        return dict(self._broken)


REGISTRY = Registry()


def register_strategy(name: str, registry: Registry | None = None):
    """Decorator: register a strategy class/factory under ``name`` at runtime."""

    def deco(factory):
        (registry or REGISTRY).register(name, factory, target=getattr(factory, "__qualname__", ""))
        return factory

    return deco


def get_strategy(name: str) -> StrategyEntry:
    return REGISTRY.get(name)


def create_strategy(name: str, config=None, **overrides):
    """Instantiate a registered strategy, optionally overriding config fields by keyword."""
    return REGISTRY.create(name, config, **overrides)


def list_strategies(pattern: str = "*") -> list[str]:
    return REGISTRY.names(pattern)
