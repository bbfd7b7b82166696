"""User-facing errors: one line that names the culprit and the fix.

The CLI prints ``GenieError`` messages without a traceback and exits with code 2, so every
message must stand on its own.
"""

from __future__ import annotations


class GenieError(Exception):
    """Base class for errors caused by user input (files, options, models)."""


class InputImageError(GenieError, ValueError):
    """A source image cannot be read."""


class ModelNotFoundError(GenieError, FileNotFoundError):
    """A model id/path resolves to nothing loadable."""


class ModelFormatError(GenieError, ValueError):
    """A model folder or file exists but is incomplete or of the wrong kind."""


class UnknownNameError(GenieError, KeyError):
    """An unknown strategy, scheduler or similar name; the message lists the choices."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(GenieError, ValueError):
    """An invalid configuration value."""


def check_known_keys(cls, d, what: str, *, list_known: bool = True) -> None:
    """Raise ConfigError if ``d`` has keys that are not fields of dataclass ``cls``."""
    from dataclasses import fields

    known = {f.name for f in fields(cls)}
    unknown = set(d) - known
    if unknown:
        tail = f"; known: {sorted(known)}" if list_known else ""
        raise ConfigError(f"unknown {what} keys {sorted(unknown)}{tail}")


def check_int(value, name: str, *, minimum: int) -> None:
    """Raise a ConfigError unless ``value`` is an int >= ``minimum`` (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")


def check_optional_int(value, name: str, *, minimum: int) -> None:
    """Raise a ConfigError unless ``value`` is None or an int >= ``minimum`` (bools refused)."""
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or value < minimum
    ):
        raise ConfigError(f"{name} must be an integer >= {minimum} or None, got {value!r}")
