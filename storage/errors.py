"""Store failure type and rate-limited warnings shared by the stores."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable

LOG = logging.getLogger("model_manager.store")


class StoreUnavailable(Exception):
    """The backing storage did not answer and no usable fallback exists."""


class WarnLimiter:
    """Logs a WARNING per key at most once every ``every_s`` seconds (bounded memory)."""

    def __init__(
        self,
        *,
        every_s: float = 60.0,
        max_keys: int = 1024,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._every_s = every_s
        self._max_keys = max_keys
        self._monotonic = monotonic
        self._last: dict[Hashable, float] = {}

    def warn(self, key: Hashable, msg: str, *args: object) -> bool:
        """Log ``msg % args`` unless ``key`` was logged recently; whether it logged."""
        now = self._monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._every_s:
            return False
        if last is None and len(self._last) >= self._max_keys:
            self._last.clear()
        self._last[key] = now
        LOG.warning(msg, *args)
        return True
