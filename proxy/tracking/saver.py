"""PeriodicSaver: keeps a file in step with state held in process memory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from storage.embedded.state_file import write_atomically
from storage.errors import WarnLimiter
from storage.periodic import Periodic

log = logging.getLogger("model_manager.tracking")

T = TypeVar("T")


class PeriodicSaver(Generic[T]):
    """Writes ``encode(snapshot())`` to ``path`` atomically when ``dirty``: every
    ``interval_s`` seconds once started, and on ``close()``; ``save()`` writes now.

    ``snapshot`` runs on the event loop and must return data that later writes do not
    touch; ``encode`` runs in a worker thread. Failures are logged (rate-limited), keep
    ``dirty`` set (the next save retries) and never raise; the old file stays intact.
    """

    def __init__(
        self,
        path: Path,
        snapshot: Callable[[], T],
        encode: Callable[[T], bytes],
        *,
        interval_s: float,
    ) -> None:
        self.path = path
        self._snapshot = snapshot
        self._encode = encode
        self._periodic = Periodic(interval_s, self._save_if_dirty, f"save-{path.name}")
        self._warn = WarnLimiter()
        self.dirty = False

    async def start(self) -> None:
        """Start the periodic save task (idempotent)."""
        self._periodic.start()

    async def save(self) -> bool:
        """Write the file now; whether it succeeded."""
        snapshot = self._snapshot()
        self.dirty = False
        try:
            await asyncio.to_thread(self._write, snapshot)
        except (OSError, ValueError, TypeError) as exc:
            self.dirty = True
            self._warn.warn("save", "could not save %s: %s", self.path, exc)
            return False
        return True

    async def close(self) -> None:
        """Stop the periodic task, then save once more if anything changed."""
        await self._periodic.stop()
        if self.dirty:
            await self.save()

    def _write(self, snapshot: T) -> None:
        write_atomically(self.path, self._encode(snapshot))

    async def _save_if_dirty(self) -> None:
        if self.dirty:
            await self.save()
