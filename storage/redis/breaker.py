"""A failure breaker: after Redis fails, callers skip the network for a while."""

from __future__ import annotations

import time
from collections.abc import Callable

from storage.errors import WarnLimiter


class Breaker:
    """Open for ``retry_s`` after ``trip``; ``reset`` closes it when Redis answers again.

    Each trip is logged through ``warn`` (rate limited) with ``message`` and the error.
    """

    __slots__ = ("_message", "_monotonic", "_open_until", "_retry_s", "_warn")

    def __init__(
        self,
        retry_s: float,
        warn: WarnLimiter,
        message: str,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._retry_s = retry_s
        self._warn = warn
        self._message = message
        self._monotonic = monotonic
        self._open_until = 0.0

    @property
    def open(self) -> bool:
        """Whether calls should skip the network now."""
        return self._monotonic() < self._open_until

    def trip(self, exc: BaseException) -> None:
        self._open_until = self._monotonic() + self._retry_s
        self._warn.warn("down", self._message + ": %r", exc)

    def reset(self) -> None:
        self._open_until = 0.0
