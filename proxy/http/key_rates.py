"""Requests per minute of each client key, over a sliding 60 s window of this process."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from proxy.config.keys import ClientKey

WINDOW_S = 60.0


class KeyRates:
    """Admits a key's request while it sent fewer than its ``rpm`` in the last minute."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._sent: dict[str, deque[float]] = {}

    def retry_after(self, key: ClientKey) -> int | None:
        """None (and the request counted) when admitted, else the seconds until it would be."""
        if key.rpm is None:
            return None
        now = self._clock()
        sent = self._sent.setdefault(key.key_id, deque())
        while sent and sent[0] <= now - WINDOW_S:
            sent.popleft()
        if len(sent) >= key.rpm:
            return max(1, math.ceil(sent[0] + WINDOW_S - now))
        sent.append(now)
        return None
