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
import json
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


# -- strategies with parameters ---------------------------------------------------------------
#: what an ``as`` label may be: it names rows, report sections and plots
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@=,:+\-]{0,79}$")


@dataclass(frozen=True)
class StrategyRef:
    """One strategy instance of a run: a registered name, config values over its defaults, and
    the label its rows carry (the bare name when there are no values)."""

    label: str
    name: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def options(self) -> dict:
        return dict(self.params)

    def create(self, registry: Registry | None = None):
        return (registry or REGISTRY).get(self.name).create(None, **self.options)

    def to_entry(self) -> str | dict:
        """As a scenario lists it: the bare name, or an object with its values and label."""
        if self.label == default_label(self.name, self.options):
            return self.label  # "genie" or "genie:ratio=0.6": the -s form reads back the same
        return {"name": self.name, "as": self.label, **self.options}


def _value_text(v: Any) -> str:
    return json.dumps(list(v) if isinstance(v, tuple) else v, separators=(",", ":"))


def default_label(name: str, params: dict) -> str:
    """``genie:ratio=0.6`` — the name and its values, sorted, as ``-s`` takes them."""
    if not params:
        return name
    return name + ":" + ",".join(f"{k}={_value_text(v)}" for k, v in sorted(params.items()))


def _split_top(text: str) -> list[str]:
    """``a=1,b=[1,2]`` -> ``['a=1', 'b=[1,2]']``: commas inside brackets or quotes stay."""
    parts, depth, quote, cur = [], 0, False, []
    for ch in text:
        if ch == '"':
            quote = not quote
        elif not quote and ch in "[{":
            depth += 1
        elif not quote and ch in "]}":
            depth -= 1
        if ch == "," and depth == 0 and not quote:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text  # a bare word: a string


def parse_strategy(text: str, option: str = "--strategy", known_only: bool = True) -> StrategyRef:
    """``genie`` or ``genie:ratio=0.6,count=2`` (values in JSON; a bare word is a string),
    checked against the strategy's config."""
    name, sep, rest = str(text).partition(":")
    params: dict[str, Any] = {}
    if sep:
        for part in _split_top(rest):
            key, eq, value = part.partition("=")
            if not eq or not key.strip():
                raise ConfigError(
                    f"{option} {text!r}: expected NAME or NAME:KEY=VALUE[,KEY=VALUE...] "
                    "(e.g. genie:ratio=0.6)"
                )
            params[key.strip()] = _parse_value(value.strip())
    return make_ref(name.strip(), params, None, where=f"{option} {text!r}", known_only=known_only)


def make_ref(
    name: str, params: dict, label: str | None, *, where: str, known_only: bool = True
) -> StrategyRef:
    """A checked :class:`StrategyRef`: a known name, values its config takes (unknown keys and
    bad values in one line naming ``where``), the config's own normal form of the values.
    ``known_only=False``: an unknown (or broken plugin's) name is kept unchecked, so that a run
    reports it as its row's failure (``preflight`` refuses it before any work)."""
    try:
        entry = REGISTRY.get(name)  # unknown: lists the choices
    except UnknownNameError:
        if known_only or not isinstance(name, str) or not name:
            raise
        return StrategyRef(
            label or default_label(name, params), name, tuple(sorted(params.items()))
        )
    try:
        strategy = entry.create(None, **params) if params else entry.create()
    except (ConfigError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    cfg = strategy.config.to_dict()
    norm = {k: (tuple(cfg[k]) if isinstance(cfg.get(k), list) else cfg.get(k, v))
            for k, v in params.items()}  # fmt: skip
    lab = label if label is not None else default_label(name, norm)
    if label is not None and (not isinstance(label, str) or not _LABEL.match(label)):
        raise ConfigError(
            f'{where}: "as" {label!r} must be 1-80 characters of letters, digits and _.@=,:+- '
            "(it names rows and report sections)"
        )
    return StrategyRef(lab, name, tuple(sorted(norm.items())))


def expand_strategies(
    entries, where: str = "scenario key strategies", known_only: bool = True
) -> list[StrategyRef]:
    """A scenario's ``strategies``: names (``"genie"``, ``"genie:ratio=0.6"``), objects
    ``{"name": "genie", "ratio": 0.6, "as": "genie@0.6"}`` and grids
    ``{"name": "genie", "grid": {"ratio": [0.5, 0.6]}}`` (one instance per combination,
    labelled ``as`` + ``@key=value`` or the default label). Labels must be unique."""
    import itertools

    refs: list[StrategyRef] = []
    for i, e in enumerate(entries):
        at = f"{where}[{i}]"
        if isinstance(e, str):
            refs.append(parse_strategy(e, option=at, known_only=known_only))
            continue
        if not isinstance(e, dict) or not isinstance(e.get("name"), str):
            raise ConfigError(
                f'{at}: a strategy is a name or an object with "name" (and config values, '
                f'"as", "grid"), got {json.dumps(e, default=str)[:80]}'
            )
        fixed = {k: v for k, v in e.items() if k not in ("name", "as", "grid")}
        label = e.get("as")
        grid = e.get("grid")
        if grid is None:
            refs.append(make_ref(e["name"], fixed, label, where=at, known_only=known_only))
            continue
        if (
            not isinstance(grid, dict)
            or not grid
            or not all(isinstance(v, list) and v for v in grid.values())
        ):
            raise ConfigError(f'{at}: "grid" maps config keys to non-empty lists of values')
        if both := sorted(set(grid) & set(fixed)):
            raise ConfigError(f"{at}: {both} given both as a value and in the grid")
        keys = sorted(grid)
        for combo in itertools.product(*(grid[k] for k in keys)):
            values = dict(zip(keys, combo, strict=True))
            lab = None
            if label is not None:
                lab = label + "@" + ",".join(f"{k}={_value_text(values[k])}" for k in keys)
            refs.append(
                make_ref(e["name"], {**fixed, **values}, lab, where=at, known_only=known_only)
            )
    seen: dict[str, int] = {}
    for r in refs:
        seen[r.label] = seen.get(r.label, 0) + 1
    for label, n in seen.items():
        if n > 1:  # one row per strategy instance: a copy would only cost time
            raise ConfigError(
                f"{where}: {label!r} is listed {n} times; list each once (or give each its "
                'own "as")'
            )
    return refs
