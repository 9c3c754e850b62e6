"""Typed reading of untrusted YAML mappings with errors that name the key path."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from typing import Any

ENV_PREFIX = "os.environ/"


class ConfigError(ValueError):
    """A configuration problem; the message starts with the key path."""


class MissingEnvironment(ConfigError):
    """An ``os.environ/NAME`` value whose variable is not set."""


class Section:
    """One mapping of the config file; every key read is marked, the rest are unknown."""

    def __init__(self, path: str, data: object) -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path or '<top>'}: must be a mapping, got {_kind(data)}")
        self.path = path
        self._data: Mapping[str, Any] = data
        self._seen: set[str] = set()

    def key_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return key in self._data

    def raw(self, key: str, default: Any = None) -> Any:
        self._seen.add(key)
        return resolve_env(self.key_path(key), self._data.get(key, default))

    def literal(self, key: str) -> Any:
        """The value as written (an ``os.environ/`` reference unresolved), marked as read."""
        self._seen.add(key)
        return self._data.get(key)

    def section(self, key: str) -> Section:
        return Section(self.key_path(key), self.raw(key))

    def items(self) -> Iterator[tuple[str, Any]]:
        for key in self._data:
            yield str(key), self.raw(key)

    def key_names(self) -> list[str]:
        """Every key, marked as read, without resolving its value."""
        self._seen.update(self._data)
        return [str(key) for key in self._data]

    def string(self, key: str, default: str | None = None) -> str | None:
        value = self.raw(key, default)
        if value is None or isinstance(value, str):
            return value
        raise ConfigError(f"{self.key_path(key)}: must be a string, got {_kind(value)}")

    def required_string(self, key: str) -> str:
        value = self.string(key)
        if not value:
            raise ConfigError(f"{self.key_path(key)}: is required (a non-empty string)")
        return value

    def number(self, key: str, default: float, *, low: float = 0.0, high: float = math.inf) -> float:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{self.key_path(key)}: must be a number, got {_kind(value)}")
        if not (low <= value <= high) or math.isnan(value):
            raise ConfigError(f"{self.key_path(key)}: must be between {low} and {high}, got {value}")
        return float(value)

    def positive(self, key: str, default: float) -> float:
        """A number of at least 0.001 (durations, timeouts)."""
        return self.number(key, default, low=1e-3)

    def optional_number(self, key: str, *, low: float = 0.0) -> float | None:
        if self._data.get(key) is None:
            self._seen.add(key)
            return None
        return self.number(key, 0.0, low=low)

    def integer(self, key: str, default: int, *, low: int = 0, high: int = 2**31) -> int:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self.key_path(key)}: must be an integer, got {_kind(value)}")
        if not low <= value <= high:
            raise ConfigError(f"{self.key_path(key)}: must be between {low} and {high}, got {value}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{self.key_path(key)}: must be true or false, got {_kind(value)}")

    def choice(self, key: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.string(key, default)
        if value in allowed:
            return value
        raise ConfigError(f"{self.key_path(key)}: must be one of {', '.join(allowed)}, got {value!r}")

    def string_list(self, key: str) -> tuple[str, ...] | None:
        value = self.raw(key)
        if value is None:
            return None
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return tuple(value)
        raise ConfigError(f"{self.key_path(key)}: must be a list of strings, got {_kind(value)}")

    def only(self, allowed: tuple[str, ...]) -> None:
        """Reject, before anything is read, a key outside ``allowed`` (naming the allowed ones)."""
        unknown = sorted(str(key) for key in self._data if key not in allowed)
        if unknown:
            known = ", ".join(sorted(allowed)) or "none"
            raise ConfigError(f"{self.key_path(unknown[0])}: unknown key (allowed here: {known})")

    def finish(self) -> None:
        """Reject every key that was never read."""
        unknown = sorted(str(key) for key in self._data if key not in self._seen)
        if unknown:
            known = ", ".join(sorted(self._seen)) or "none"
            raise ConfigError(f"{self.key_path(unknown[0])}: unknown key (allowed here: {known})")


def resolve_env(path: str, value: Any) -> Any:
    """Replace an ``os.environ/NAME`` string by that variable's value; missing is an error."""
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        name = value[len(ENV_PREFIX) :]
        if name not in os.environ:
            raise MissingEnvironment(f"{path}: environment variable {name} is not set")
        return os.environ[name]
    return value


def _kind(value: object) -> str:
    return f"{type(value).__name__} {value!r}"[:80]
