"""A small strict strategy registry with entry-point plugins.

Names are explicit snake_case; registering a name twice raises; an unknown name raises with the
list of known ones. Third-party strategies come from the entry-point group
``genie_plugin.strategies`` and are read on first lookup (not at import), each loaded on its own
so a broken plugin is reported by name without breaking the others.
``GENIE_DISABLE_PLUGIN_AUTOLOAD=1`` gives the built-ins only. Built-ins are declared through the
same entry points in pyproject.toml; ``BUILTIN_STRATEGIES`` mirrors them so a source checkout
without installed metadata still works (a test keeps the two in sync).
"""

from __future__ import annotations

import fnmatch
import importlib
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

BUILTIN_STRATEGIES: dict[str, str] = {
    "strong": "genie_plugin.strategies.strong:StrongStrategy",
    "mixup": "genie_plugin.strategies.mixup:MixUpStrategy",
    "cutmix": "genie_plugin.strategies.cutmix:CutMixStrategy",
    "genie": "genie_plugin.strategies.genie:GenieStrategy",
    "genie_ada": "genie_plugin.strategies.genie_ada:GenieAdaStrategy",
    "genie_ada_fast": "genie_plugin.strategies.genie_ada:GenieAdaFastStrategy",
    "genie_ada_lite": "genie_plugin.strategies.genie_ada:GenieAdaLiteStrategy",
    "img2img": "genie_plugin.strategies.img2img:Img2ImgStrategy",
    "img2img_high": "genie_plugin.strategies.img2img:Img2ImgHighStrategy",
    "none": "genie_plugin.strategies.baselines:NoneStrategy",
    "text2image": "genie_plugin.strategies.text2image:Text2ImageStrategy",
    "weak": "genie_plugin.strategies.baselines:WeakStrategy",
}


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


def _load_object(target: str):
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


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
                    f"{prev.target or prev.factory!r}); pick another name"
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
            for name, target in BUILTIN_STRATEGIES.items():
                if name not in self._entries:
                    self.register(
                        name,
                        _load_object(target),
                        distribution=DIST_NAME,
                        version=version,
                        target=target,
                    )
            if os.environ.get(DISABLE_ENV, "").strip() not in ("", "0"):
                return
            for ep in metadata.entry_points(group=self.group):
                dist = getattr(ep, "dist", None)
                dist_name = dist.metadata["Name"] if dist is not None else "<unknown>"
                if dist_name == DIST_NAME and BUILTIN_STRATEGIES.get(ep.name) == ep.value:
                    continue  # a built-in, already registered above
                try:
                    obj = ep.load()
                    self.register(
                        ep.name,
                        obj,
                        distribution=dist_name,
                        version=dist.version if dist is not None else "",
                        target=ep.value,
                    )
                except Exception as exc:  # a plugin must not break the others
                    self._broken[ep.name] = (
                        f"plugin {ep.name!r} from {dist_name} ({ep.value}) failed to load: "
                        f"{type(exc).__name__}: {exc}"
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
