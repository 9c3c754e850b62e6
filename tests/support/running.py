"""Running: ``with thing:`` calls ``thing.start()`` on entry and ``thing.stop()`` on exit."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Running:
    """A helper with ``start``/``stop`` that is also a context manager."""

    __slots__ = ()

    def start(self) -> object:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
