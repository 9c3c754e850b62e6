"""A bounded memo: values computed from a key once, remembered up to a limit."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedMemo(Generic[K, V]):
    """``compute(key)``, remembered for at most ``limit`` keys; a new key beyond that starts
    the memory over (a memo of the same few keys used over and over, never a cache that
    must hold everything). ``compute`` must be a pure function of the key."""

    __slots__ = ("_compute", "_known", "_limit")

    def __init__(self, compute: Callable[[K], V], limit: int) -> None:
        if limit < 1:
            raise ValueError(f"memo limit must be >= 1, got {limit}")
        self._compute = compute
        self._limit = limit
        self._known: dict[K, V] = {}

    def __len__(self) -> int:
        """Keys remembered."""
        return len(self._known)

    def __call__(self, key: K) -> V:
        try:
            return self._known[key]
        except KeyError:
            if len(self._known) >= self._limit:
                self._known.clear()
            value = self._known[key] = self._compute(key)
            return value
