"""A settable clock for code that takes ``clock: Callable[[], float]``."""

from __future__ import annotations


class FakeClock:
    """``clock()`` returns ``clock.now``; tests move time by setting or adding to it."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
