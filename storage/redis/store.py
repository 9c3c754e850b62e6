"""RedisStore: PosteriorStore on Redis, shared by every proxy replica.

Reads: one pipelined round trip (storage.redis.reads), decayed client-side, shared by the
requests that ask for the same tables while it is in flight or fresh (``fresh_s`` > 0); during
an outage the last good read (else StoreUnavailable). Writes: through a SequencedWriter, exactly
once, buffered coalesced per cell while Redis is away; ``apply`` never raises. Details:
docs/storage.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio
import redis.exceptions
from redis.exceptions import RedisError, ResponseError

from policies import decay
from policies.base import Delta, Evidence, Snapshot, Table
from storage.errors import StoreUnavailable, WarnLimiter
from storage.redis import dump as redis_dump
from storage.redis import keys
from storage.redis.apply import ApplyScript
from storage.redis.breaker import Breaker
from storage.redis.client import Client, connect
from storage.redis.codec import UNAVAILABLE, cell
from storage.redis.pending import Batch, Pending
from storage.redis.read_cache import FreshReads, Raw, ReadCache, SharedReads
from storage.redis.reads import SnapshotRead
from storage.redis.sequence import SEQ_TTL_S, Sequencer
from storage.redis.writer import SequencedWriter

EMPTY = Evidence()
Dump = redis_dump.Dump


class RedisStore:
    """Counters: corrupt_reads, repaired_cells, unavailable_reads, failed_reads,
    rejected_deltas, dropped_updates (cells), replayed_batches (resent batches Redis had
    already applied); ``pending`` counts cells buffered or sent and not yet answered."""

    def __init__(
        self,
        client: Client,
        *,
        prefix: str = "mm",
        half_life_s: float | None = None,
        clock: Callable[[], float] = time.time,
        buffer_limit: int = 100_000,
        key_ttl_s: float | None = None,
        cache_limit: int = 100_000,
        retry_interval_s: float = 1.0,
        fresh_s: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
        seq_ttl_s: float = SEQ_TTL_S,
    ) -> None:
        self._client = client
        self._prefix = keys.check_prefix(prefix)
        self._half_life = decay.check_half_life(half_life_s)
        self._clock = clock
        self._cache = ReadCache(cache_limit)
        self._fresh = FreshReads(fresh_s, monotonic)
        self._shared = SharedReads() if fresh_s > 0 else None
        self._snapshot_read = SnapshotRead(client, self._prefix)
        self._warn = WarnLimiter()
        self._breaker = Breaker(retry_interval_s, self._warn, "Redis unavailable")
        sequencer = Sequencer(self._prefix, seq_ttl_s)
        self._script = ApplyScript(client, self._prefix, sequencer, self._half_life, key_ttl_s)
        self._writer: SequencedWriter[Pending, Batch] = SequencedWriter(
            self._script,
            sequencer,
            name="buffered updates",
            breaker=self._breaker,
            warn=self._warn,
            clock=clock,
            monotonic=monotonic,
            buffer_limit=buffer_limit,
            retry_interval_s=retry_interval_s,
        )
        self.corrupt_reads = self.rejected_deltas = self.unavailable_reads = self.failed_reads = 0

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        cluster: bool = False,
        socket_timeout: float = 0.25,
        connect_timeout: float = 0.25,
        **kw: Any,
    ) -> RedisStore:
        """A store on a new client for ``url`` (a single Redis, or any node of a Redis
        Cluster) with short timeouts and no client retries (the store resends writes
        itself); ``kw`` go to the constructor."""
        client = connect(url, cluster=cluster, socket_timeout=socket_timeout, connect_timeout=connect_timeout)
        return cls(client, **kw)

    @property
    def dropped_updates(self) -> int:
        """Cells dropped unwritten (buffer full, or in doubt past the seq TTL)."""
        return self._writer.dropped

    @property
    def pending(self) -> int:
        """Buffered cells not yet acknowledged by Redis."""
        return self._writer.pending

    @property
    def replayed_batches(self) -> int:
        """Resent batches Redis had already applied (their replies were lost)."""
        return self._writer.replayed

    @property
    def repaired_cells(self) -> int:
        """Corrupt cells the apply script reset before adding to them."""
        return self._script.repaired_cells

    def counters(self) -> dict[str, int]:
        """The write-path and outage counters (see the class docstring)."""
        return {
            "pending": self.pending, "dropped_updates": self.dropped_updates,
            "replayed_batches": self.replayed_batches, "unavailable_reads": self.unavailable_reads,
            "failed_reads": self.failed_reads, "corrupt_reads": self.corrupt_reads,
            "rejected_deltas": self.rejected_deltas,
        }

    @property
    def client(self) -> Client:
        """The client (shared with other bookkeeping, e.g. tracking; closed by ``close``)."""
        return self._client

    @property
    def prefix(self) -> str:
        """The key prefix."""
        return self._prefix

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Start the task that retries buffered writes every ``retry_interval_s``."""
        await self._writer.start()

    async def close(self) -> None:
        """Stop the retry task, flush the buffer best-effort, close the client."""
        await self._writer.close()
        await self._client.aclose()

    async def ping(self) -> bool:
        """Whether Redis answers PING now."""
        try:
            return bool(await self._client.ping())
        except (RedisError, OSError):
            return False

    # -- reads -----------------------------------------------------------------------
    async def load(self, tables: Sequence[Table], models: Sequence[str]) -> Snapshot:
        """Evidence for every (table, model), decayed to now (see module doc for outages)."""
        fresh = self._fresh.get(tables, models)
        if fresh is not None:
            return fresh
        if self._shared is None:
            return await self._load(tables, models)
        return await self._shared.get((tuple(tables), tuple(models)), lambda: self._load(tables, models))

    async def _load(self, tables: Sequence[Table], models: Sequence[str]) -> Snapshot:
        if self._breaker.open:
            return self._cached(tables, models, None)
        try:
            replies = await self._read(tables, models)
        except UNAVAILABLE as exc:
            self._breaker.trip(exc)
            return self._cached(tables, models, exc)
        self._breaker.reset()
        return self._fresh.put(tables, models, self._decode(tables, models, replies))

    async def _read(self, tables: Sequence[Table], models: Sequence[str]) -> list[Any]:
        try:
            return await self._snapshot_read.replies(tables, models)
        except redis.exceptions.ConnectionError:  # maybe a closed pooled connection: once more
            return await self._snapshot_read.replies(tables, models)

    def _decode(self, tables: Sequence[Table], models: Sequence[str], replies: list[Any]) -> Snapshot:
        now = self._clock()
        pairs = zip(tables, replies, strict=True)
        return {table: self._table(table, models, reply, now) for table, reply in pairs}

    def _table(self, table: Table, models: Sequence[str], reply: Any, now: float) -> dict[str, Evidence]:
        """One table's evidence per model from its HMGET reply (s, f, t per model), which is
        also remembered as that table's last good read."""
        # a per-key error (WRONGTYPE: the key is not a hash) reads as corrupt cells
        values = [reply] * (3 * len(models)) if isinstance(reply, ResponseError) else reply
        raws: dict[str, Raw] = {}
        out: dict[str, Evidence] = {}
        half_life = self._half_life
        for i, model in enumerate(models):
            raw_s, raw_f, raw_t = values[3 * i], values[3 * i + 1], values[3 * i + 2]
            if raw_s is None and raw_f is None and raw_t is None:  # never written: no evidence
                raws[model] = (0.0, 0.0, now)
                out[model] = EMPTY
                continue
            s, f, t, corrupt = cell(raw_s, raw_f, raw_t, now)
            if corrupt:
                self._corrupt(table, model, (raw_s, raw_f, raw_t))
            raws[model] = (s, f, t)
            out[model] = EMPTY if s == 0 and f == 0 else Evidence(*decay.decayed(s, f, t, now, half_life))
        self._cache.put(table, raws)
        return out

    def _cached(self, tables: Sequence[Table], models: Sequence[str], exc: BaseException | None) -> Snapshot:
        rows = self._cache.get_all(tables, models)
        if rows is None:
            self.failed_reads += 1
            raise StoreUnavailable(f"Redis unavailable and no cached read: {exc!r}") from exc
        self.unavailable_reads += 1
        self._warn.warn("stale", "Redis unavailable; serving last good reads (%r)", exc)
        now, hl = self._clock(), self._half_life
        return {
            table: {m: Evidence(*decay.decayed(*raw, now, hl)) for m, raw in zip(models, row, strict=True)}
            for table, row in rows.items()
        }

    def _corrupt(self, table: Table, model: str, value: object) -> None:
        self.corrupt_reads += 1
        self._warn.warn((table, model), "corrupt cell %s/%s in Redis: %r; read as empty", table, model, value)

    # -- writes ----------------------------------------------------------------------
    async def apply(self, deltas: Sequence[Delta]) -> None:
        """Buffer deltas and write them (atomically per scope, exactly once) unless Redis is
        down; never raises."""
        now = self._clock()
        items = [(d, now) for d in deltas if decay.finite(d.successes, d.failures)]
        if len(items) != len(deltas):
            self.rejected_deltas += len(deltas) - len(items)
            self._warn.warn("reject", "skipping non-finite deltas in %r", deltas)
        if items:
            await self._writer.write(items)

    async def flush(self) -> bool:
        """Try to write everything buffered now; whether the buffer is empty afterwards."""
        return await self._writer.flush()

    async def dump(self) -> Dump:
        """Every stored table: scope -> context -> model -> evidence decayed to now.

        Corrupt cells are left out (and counted); raises StoreUnavailable on outage.
        """
        tables, corrupt = await redis_dump.dump(self._client, self._prefix, self._clock(), self._half_life)
        self.corrupt_reads += corrupt
        return tables

