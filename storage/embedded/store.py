"""MemoryStore: a PosteriorStore in process memory only (tests, tools, offline evaluation).

Same semantics as RedisStore and SqliteStore, single process, nothing persisted: the proxy's
embedded default is SqliteStore (storage.embedded.sqlite_store).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from policies.base import Delta
from policies.evidence_tables import EvidenceTables
from storage.errors import LOG, WarnLimiter


class MemoryStore(EvidenceTables):
    """EvidenceTables with the Store lifecycle; counter ``rejected_deltas``."""

    def __init__(self, *, half_life_s: float | None = None, clock: Callable[[], float] = time.time) -> None:
        super().__init__(half_life_s=half_life_s, clock=clock)
        self._warn = WarnLimiter()

    async def start(self) -> None:
        """Log the single-process notice."""
        LOG.info("posterior store: in-process memory, single-process, not persisted")

    async def flush(self) -> bool:
        """True: writes land in memory at once."""
        return True

    def counters(self) -> dict[str, int]:
        """rejected_deltas (nothing is buffered)."""
        return {"rejected_deltas": self.rejected_deltas}

    def rejected(self, delta: Delta) -> None:
        self._warn.warn("reject", "skipping non-finite delta %r", delta)
