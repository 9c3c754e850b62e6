"""429 cooldowns shared by every process through Redis, off the request path.

One sorted set, ``{prefix}:cooldowns`` (member: model, score: wall-clock time its rest ends;
one key, so one Cluster slot). A rest seen here is pushed at once by a background task
(``ZADD GT``: the longest rest wins); every ``interval_s`` each process drops ended rests and
reads back the others' in the same pipeline. So a rest one process saw is honoured by every
other within one interval (plus a round trip). While Redis fails, pushes are kept and each
process honours its own rests (proxy.pipeline.cooldowns). Times are wall clock: replicas need
synchronised clocks (NTP), as for the shared usage counts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from redis.exceptions import RedisError

from storage.errors import WarnLimiter
from storage.periodic import Periodic
from storage.redis.client import Client

KEY_TTL_S = 3600
"""The set expires this long after the last rest was pushed (longer than any rest)."""


class SharedCooldowns:
    """Models resting after a 429 anywhere, as of the last sync (``until``)."""

    def __init__(
        self,
        client: Client,
        *,
        prefix: str = "mm",
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._key = f"{prefix}:cooldowns"
        self._clock = clock
        self._unsent: dict[str, float] = {}
        self._known: dict[str, float] = {}
        self._push: asyncio.Task[None] | None = None
        self._task = Periodic(interval_s, self.sync, "cooldown-sync")
        self._warn = WarnLimiter()
        self.failed_syncs = 0

    def rest(self, model: str, until: float) -> None:
        """``model`` rests until wall-clock time ``until``; pushed now by a background task."""
        self._unsent[model] = max(until, self._unsent.get(model, 0.0))
        if self._push is None or self._push.done():
            self._push = asyncio.get_running_loop().create_task(self.sync(), name="cooldown-push")

    def until(self, model: str) -> float | None:
        """When ``model``'s longest rest known from any process ends (wall clock), or None."""
        return self._known.get(model)

    async def start(self) -> None:
        self._task.start()

    async def close(self) -> None:
        """Stop syncing; rests not pushed yet are dropped (they end within minutes anyway)."""
        await self._task.stop()
        if self._push is not None:
            await self._push

    async def sync(self) -> None:
        """Push the rests seen here since the last sync and read every process's back."""
        unsent, self._unsent = self._unsent, {}
        now = self._clock()
        try:
            rows = await self._exchange(unsent, now)
        except (RedisError, OSError) as exc:
            for model, until in unsent.items():
                self._unsent[model] = max(until, self._unsent.get(model, 0.0))
            self.failed_syncs += 1
            self._warn.warn("sync", "cooldown sync failed (%r); 429 rests honoured per process", exc)
            return
        self._known = {_text(model): float(score) for model, score in rows}

    async def _exchange(self, unsent: dict[str, float], now: float) -> list[tuple[bytes | str, float]]:
        pipe = self._client.pipeline(transaction=False)
        if unsent:
            pipe.zadd(self._key, unsent, gt=True)
            pipe.expire(self._key, KEY_TTL_S)
        pipe.zremrangebyscore(self._key, "-inf", now)
        pipe.zrangebyscore(self._key, f"({now!r}", "+inf", withscores=True)
        replies = await pipe.execute()
        rows: list[tuple[bytes | str, float]] = replies[-1]
        return rows


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
