"""rpm/tpm usage shared by every process through Redis, off the request path.

Every ``interval_s`` a process adds what it sent since its last sync to per-minute counters
(``<prefix>:usage:{<model>}:<kind>:<minute>``, INCRBY, expiring after two minutes) and reads
back every process's counts of the current and previous minute, in one pipeline. Usage over
the last 60 s is estimated as ``current + previous x (1 - elapsed share of the minute)``
(the sliding-window counter). A decision adds what this process sent since the sync to that
estimate, so it costs no round trip; the estimate lags by up to ``interval_s``. While Redis
fails, or before the first sync, ``estimate`` is None and UsageLimits uses this process's
own window. Minutes are wall-clock minutes: replicas need synchronised clocks (NTP).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection

from redis.exceptions import RedisError

from storage.errors import WarnLimiter
from storage.periodic import Periodic
from storage.redis.client import Client

KINDS = ("requests", "tokens")
MINUTE_S = 60.0
STALE_SYNCS = 3
"""An estimate older than this many sync intervals is not used (the process's own window is)."""


class SharedUsage:
    """Cluster-wide requests and tokens per minute of ``models`` (the ones with limits)."""

    def __init__(
        self,
        client: Client,
        models: Collection[str],
        *,
        prefix: str = "mm",
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._models = tuple(models)
        self._prefix = prefix
        self._interval_s = interval_s
        self._clock = clock
        self._unsent: dict[tuple[str, str], int] = {}
        self._since_sync: dict[tuple[str, str], int] = {}
        self._cluster: dict[tuple[str, str], float] = {}
        self._synced_at: float | None = None
        self._warn = WarnLimiter()
        self._task = Periodic(interval_s, self.sync, "usage-sync")
        self.failed_syncs = 0

    def add(self, model: str, kind: str, amount: int) -> None:
        """Count ``amount`` sent to ``model`` now (flushed by the next sync)."""
        key = (model, kind)
        self._unsent[key] = self._unsent.get(key, 0) + amount
        self._since_sync[key] = self._since_sync.get(key, 0) + amount

    def estimate(self, model: str, kind: str) -> float | None:
        """Every process's usage in the last minute, this one's since the sync included;
        None when the last good sync is stale (or there was none)."""
        synced = self._synced_at
        if synced is None or self._clock() - synced > STALE_SYNCS * self._interval_s:
            return None
        key = (model, kind)
        return self._cluster.get(key, 0.0) + self._since_sync.get(key, 0)

    async def start(self) -> None:
        self._task.start()

    async def close(self) -> None:
        """Stop syncing and flush what is unsent (best effort)."""
        await self._task.stop()
        await self.sync()

    async def sync(self) -> None:
        """Flush the unsent counts and read the current and previous minutes back."""
        now = self._clock()
        minute = int(now // MINUTE_S)
        unsent, self._unsent = self._unsent, {}
        try:
            counts = await self._exchange(unsent, minute)
        except (RedisError, OSError) as exc:
            self._merge_back(unsent)
            self.failed_syncs += 1
            self._warn.warn("sync", "usage sync failed (%r); rpm/tpm counted per process meanwhile", exc)
            return
        weight = 1.0 - (now % MINUTE_S) / MINUTE_S
        self._cluster = {key: current + weight * previous for key, (current, previous) in counts.items()}
        self._since_sync = {}
        self._synced_at = now

    async def _exchange(
        self, unsent: dict[tuple[str, str], int], minute: int
    ) -> dict[tuple[str, str], tuple[float, float]]:
        pipe = self._client.pipeline(transaction=False)
        for (model, kind), amount in unsent.items():
            key = self._key(model, kind, minute)
            pipe.incrby(key, amount)
            pipe.expire(key, int(2 * MINUTE_S))
        wanted = [(model, kind) for model in self._models for kind in KINDS]
        for model, kind in wanted:
            pipe.get(self._key(model, kind, minute))
            pipe.get(self._key(model, kind, minute - 1))
        replies = (await pipe.execute())[2 * len(unsent):]
        return {
            key: (_count(replies[2 * i]), _count(replies[2 * i + 1])) for i, key in enumerate(wanted)
        }

    def _merge_back(self, unsent: dict[tuple[str, str], int]) -> None:
        for key, amount in unsent.items():
            self._unsent[key] = self._unsent.get(key, 0) + amount

    def _key(self, model: str, kind: str, minute: int) -> str:
        return f"{self._prefix}:usage:{{{model}}}:{kind}:{minute}"


def _count(reply: object) -> float:
    """A stored counter; anything unreadable counts as 0."""
    try:
        return float(reply) if reply is not None else 0.0  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
