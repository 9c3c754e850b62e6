"""RedisStore: PosteriorStore on Redis, shared by every proxy replica.

Reads are one pipelined round trip of HMGETs, decayed client-side. Writes are one Lua
script call per scope (atomic over that scope's hashes, decay included), all in one pipeline.

Writes are exactly once: each script call carries this store's writer id and a sequence
number, checked and recorded by the script itself (no extra round trip); a resent batch that
Redis already applied changes nothing (counted in ``replayed_batches``). The contract, and
its memory cost (one small key per store and Cluster slot written, not per write), are in
``storage.redis.sequence``; ``storage.redis.pending`` says when deltas are merged and when a batch
keeps its seq. Writes go out one pipeline at a time (under a lock; concurrent ``apply``
calls meanwhile are buffered and sent together by the next pipeline).

Outages (connection errors, timeouts, LOADING): ``load`` returns the last good read of
every requested cell (counted in ``unavailable_reads``) or, if any cell was never read,
raises StoreUnavailable (counted in ``failed_reads``). ``apply`` never raises: deltas
are buffered (``buffer_limit`` cells; oldest dropped and counted in ``dropped_updates``)
and written, merged per cell and decayed from their own time, by the next ``apply`` that
reaches Redis, by ``flush()``, or by the retry task ``start()`` runs. After a failure,
calls skip the network for ``retry_interval_s`` (reads answer from the cache at once).
A batch whose reply was lost is resent under its seq while its slot's seq key surely lives
(up to SEQ_MARGIN of ``seq_ttl_s``, default 1 day, after it was formed); after that it is
dropped and counted instead (at most once: it may have been applied). A batch Redis answered
with an error was not applied: its deltas are buffered again and resent under a new seq.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio
import redis.exceptions
from redis.exceptions import RedisError, ResponseError

from policies import decay
from policies.base import Delta, Evidence, Snapshot, Table
from storage.errors import LOG, StoreUnavailable, WarnLimiter
from storage.periodic import Periodic
from storage.redis import dump as redis_dump
from storage.redis import keys, pending
from storage.redis.apply import ApplyScript
from storage.redis.breaker import Breaker
from storage.redis.codec import UNAVAILABLE, cell, make_client
from storage.redis.pending import Batch, Pending, PendingBuffer
from storage.redis.read_cache import FreshReads, ReadCache
from storage.redis.sequence import ALREADY_APPLIED, NOT_APPLIED, SEQ_MARGIN, SEQ_TTL_S, Sequencer, slot_tags

EMPTY = Evidence()
Dump = redis_dump.Dump


class RedisStore:
    """Counters: corrupt_reads, repaired_cells, unavailable_reads, failed_reads,
    rejected_deltas, dropped_updates (cells), replayed_batches (resent batches Redis had
    already applied); ``pending`` is the number of buffered cells."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        prefix: str = "mm",
        half_life_s: float | None = None,
        clock: Callable[[], float] = time.time,
        buffer_limit: int = 10_000,
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
        self._buffer = PendingBuffer(buffer_limit)
        self._cache = ReadCache(cache_limit)
        self._fresh = FreshReads(fresh_s, monotonic)
        self._monotonic = monotonic
        self._seq = Sequencer(self._prefix, seq_ttl_s)
        self._script = ApplyScript(client, self._prefix, self._seq)
        self._lock = asyncio.Lock()
        self._retry = Periodic(retry_interval_s, self._flush_if_pending, "redis-store-retry")
        self._warn = WarnLimiter()
        self._breaker = Breaker(retry_interval_s, self._warn, "Redis unavailable")
        self.corrupt_reads = self.repaired_cells = self.rejected_deltas = 0
        self.unavailable_reads = self.failed_reads = self.replayed_batches = 0

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        socket_timeout: float = 0.25,
        connect_timeout: float = 0.25,
        **kw: Any,
    ) -> RedisStore:
        """A store on a new client for ``url`` with short timeouts and no client retries
        (the store resends writes itself); ``kw`` go to the constructor."""
        client = make_client(url, socket_timeout, connect_timeout)
        return cls(client, **kw)

    @property
    def dropped_updates(self) -> int:
        return self._buffer.dropped

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def counters(self) -> dict[str, int]:
        """The write-path and outage counters (see the class docstring)."""
        return {
            "pending": self.pending, "dropped_updates": self.dropped_updates,
            "replayed_batches": self.replayed_batches, "unavailable_reads": self.unavailable_reads,
            "failed_reads": self.failed_reads, "corrupt_reads": self.corrupt_reads,
            "rejected_deltas": self.rejected_deltas,
        }

    @property
    def client(self) -> redis.asyncio.Redis:
        """The client (shared with other bookkeeping, e.g. tracking; closed by ``close``)."""
        return self._client

    @property
    def prefix(self) -> str:
        """The key prefix."""
        return self._prefix

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Start the task that retries buffered writes every ``retry_interval_s``, after
        building the slot-tag table in a thread (~0.2 s of CPU the first write would
        otherwise spend on the event loop)."""
        await asyncio.to_thread(slot_tags)
        self._retry.start()

    async def close(self) -> None:
        """Stop the retry task, flush the buffer best-effort, close the client."""
        await self._retry.stop()
        if not await self.flush():
            LOG.error("closing with %d buffered updates unwritten (Redis unavailable)", self.pending)
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
            return await self._hmget(tables, models)
        except redis.exceptions.ConnectionError:  # maybe a closed pooled connection: once more
            return await self._hmget(tables, models)

    async def _hmget(self, tables: Sequence[Table], models: Sequence[str]) -> list[Any]:
        names = [name for m in models for name in keys.fields(m)]
        async with self._client.pipeline(transaction=False) as pipe:
            for table in tables:
                pipe.hmget(keys.post_key(self._prefix, table), names)
            return await pipe.execute(raise_on_error=False)

    def _decode(self, tables: Sequence[Table], models: Sequence[str], replies: list[Any]) -> Snapshot:
        now = self._clock()
        out: dict[Table, dict[str, Evidence]] = {}
        for table, reply in zip(tables, replies, strict=True):
            # a per-key error (WRONGTYPE: the key is not a hash) reads as corrupt cells
            cells = [reply] * (3 * len(models)) if isinstance(reply, ResponseError) else reply
            out[table] = {m: self._evidence(table, m, cells, i, now) for i, m in enumerate(models)}
        return out

    def _evidence(self, table: Table, model: str, reply: list[Any], i: int, now: float) -> Evidence:
        raw_s, raw_f, raw_t = reply[3 * i], reply[3 * i + 1], reply[3 * i + 2]
        s, f, t, corrupt = cell(raw_s, raw_f, raw_t, now)
        if corrupt:
            self._corrupt(table, model, (raw_s, raw_f, raw_t))
        self._cache.put(table, model, (s, f, t))
        if s == 0 and f == 0:
            return EMPTY
        return Evidence(*decay.decayed(s, f, t, now, self._half_life))

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
        items = self._accept(deltas, now)
        if not items:
            return
        self._note_drops(self._buffer.extend(items))
        if not self._breaker.open:
            await self.flush()

    async def flush(self) -> bool:
        """Try to write everything buffered now; whether the buffer is empty afterwards.

        In-doubt batches go first, each under its own seq; loose deltas are formed into new
        batches only once Redis answered that pipeline (so they are never put in doubt by an
        outage they were not sent into, and never overtake an in-doubt batch).
        """
        async with self._lock:
            now = self._clock()
            doubt, answered = await self._send(self._unexpired(self._buffer.take_batches()), now)
            if answered and len(self._buffer):
                more, _ = await self._send(self._form(self._buffer.take(), now), now)
                doubt += more
            self._note_drops(self._buffer.keep_batches(doubt))
            return not len(self._buffer)

    def _form(self, items: list[Pending], now: float) -> list[Batch]:
        return pending.form(items, now, self._half_life, self._monotonic(), self._seq.number)

    def _accept(self, deltas: Sequence[Delta], now: float) -> list[Pending]:
        items = [(d, now) for d in deltas if decay.finite(d.successes, d.failures)]
        if len(items) != len(deltas):
            self.rejected_deltas += len(deltas) - len(items)
            self._warn.warn("reject", "skipping non-finite deltas in %r", deltas)
        return items

    def _unexpired(self, batches: list[Batch]) -> list[Batch]:
        """Batches whose seq key surely still lives; older ones are dropped and counted
        (they may have been applied, and a retry could no longer tell)."""
        oldest = self._monotonic() - SEQ_MARGIN * self._seq.ttl_s
        kept = [b for b in batches if b.born > oldest]
        expired = sum(b.cells for b in batches) - sum(b.cells for b in kept)
        if expired:
            self._buffer.dropped += expired
            self._note_drops(expired, "in-doubt updates older than the seq TTL")
        return kept

    def _note_drops(self, dropped: int, what: str = "oldest updates (buffer full)") -> None:
        if dropped:
            self._warn.warn(
                ("dropped", what), "dropped %d %s; %d in total", dropped, what, self.dropped_updates
            )

    async def _send(self, batches: list[Batch], now: float) -> tuple[list[Batch], bool]:
        """Run ``batches``; the ones left in doubt (to resend under the same seqs) and whether
        Redis answered. Batches answered as not applied are buffered as loose deltas again."""
        if not batches:
            return [], True
        try:
            results = await self._script.run(batches, now, self._half_life)
        except UNAVAILABLE as exc:
            self._breaker.trip(exc)
            return batches, False
        self._breaker.reset()
        unapplied: list[Batch] = []
        for batch, result in zip(batches, results, strict=True):
            if isinstance(result, Exception):
                self._warn.warn(("apply", batch.scope), "apply to scope %s failed: %r", batch.scope, result)
                unapplied.append(batch)
            elif int(result) == ALREADY_APPLIED:
                self.replayed_batches += 1
            elif int(result) == NOT_APPLIED:
                unapplied.append(batch)
            else:
                self.repaired_cells += int(result)
        self._note_drops(self._buffer.restore([item for b in unapplied for item in b.loose()]))
        return [], True

    # -- outage bookkeeping ----------------------------------------------------------
    async def _flush_if_pending(self) -> None:
        if len(self._buffer):
            await self.flush()

    async def dump(self) -> Dump:
        """Every stored table: scope -> context -> model -> evidence decayed to now.

        Corrupt cells are left out (and counted); raises StoreUnavailable on outage.
        """
        tables, corrupt = await redis_dump.dump(self._client, self._prefix, self._clock(), self._half_life)
        self.corrupt_reads += corrupt
        return tables
