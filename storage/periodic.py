"""A background task that runs a coroutine function every ``interval_s`` until stopped."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable


class Periodic:
    """Calls ``tick`` every ``interval_s`` seconds on the running loop, between start and stop.

    ``tick`` decides for itself whether there is work (e.g. a dirty flag or a buffer); an
    exception from it ends the task (callers log and swallow their own errors).
    """

    __slots__ = ("_interval_s", "_name", "_task", "_tick")

    def __init__(self, interval_s: float, tick: Callable[[], Awaitable[object]], name: str) -> None:
        self._interval_s = interval_s
        self._tick = tick
        self._name = name
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the task (idempotent); needs a running event loop."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        """Cancel the task and wait for it to end (idempotent)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            await self._tick()
