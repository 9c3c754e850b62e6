"""RedisStore: PosteriorStore on Redis, shared by every proxy replica.

Reads are one pipelined round trip of HMGETs, decayed client-side. Writes are one Lua
script call per scope (atomic over that scope's hashes, decay included), all in one pipeline.

Writes are exactly once: each script call carries an idempotency token, set by the script
itself (no extra round trip) with a TTL of ``token_ttl_s``; a resent batch whose token is
already set changes nothing (counted in ``replayed_batches``). See ``policies.pending`` for
when deltas are merged and when a batch keeps its token.

Outages (connection errors, timeouts, LOADING): ``load`` returns the last good read of
every requested cell (counted in ``unavailable_reads``) or, if any cell was never read,
raises StoreUnavailable (counted in ``failed_reads``). ``apply`` never raises: deltas
are buffered (``buffer_limit`` cells; oldest dropped and counted in ``dropped_updates``)
and written, merged per cell and decayed from their own time, by the next ``apply`` that
reaches Redis, by ``flush()``, or by the retry task ``start()`` runs. After a failure,
calls skip the network for ``retry_interval_s`` (reads answer from the cache at once).
A batch whose reply was lost is resent under its token while the token surely lives (up
to TOKEN_MARGIN of ``token_ttl_s`` after it was formed); after that it is dropped and
counted instead (at most once: it may have been applied).

Token cost: one key (about 150 bytes of Redis memory) per scope per write pipeline, kept
for ``token_ttl_s``: pipelines/s x scopes x TTL x 150 B, e.g. 20/s x 2 x 1 h ~ 22 MB. The
default of 1 hour only bounds batches in flight when Redis stopped answering (or whose reply
was lost); buffered loose deltas never reached Redis and never expire.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio
import redis.exceptions
from redis.exceptions import RedisError, ResponseError

from policies import decay, keys, pending, redis_dump
from policies.base import Delta, Evidence, Snapshot, Table
from policies.pending import Batch, Pending, PendingBuffer
from policies.periodic import Periodic
from policies.read_cache import FreshReads, ReadCache
from policies.redis_apply import ALREADY_APPLIED, ApplyScript
from policies.redis_codec import UNAVAILABLE, cell, make_client
from policies.store_errors import LOG, StoreUnavailable, WarnLimiter

EMPTY = Evidence()
TOKEN_TTL_S = 3600.0
"""Default lifetime of a write's idempotency token."""
TOKEN_MARGIN = 0.9
"""An in-doubt batch is resent only while younger than this fraction of the token TTL."""
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
        token_ttl_s: float = TOKEN_TTL_S,
    ) -> None:
        self._client = client
        self._prefix = keys.check_prefix(prefix)
        self._half_life = decay.check_half_life(half_life_s)
        self._clock = clock
        self._buffer = PendingBuffer(buffer_limit)
        self._cache = ReadCache(cache_limit)
        self._fresh = FreshReads(fresh_s, monotonic)
        self._retry_s = retry_interval_s
        self._monotonic = monotonic
        self._token_ttl = token_ttl_s
        self._script = ApplyScript(client, self._prefix, token_ttl_s)
        self._down_until = 0.0
        self._lock = asyncio.Lock()
        self._retry = Periodic(retry_interval_s, self._flush_if_pending, "redis-store-retry")
        self._warn = WarnLimiter()
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
        """Start the task that retries buffered writes every ``retry_interval_s``."""
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
        if self._down():
            return self._cached(tables, models, None)
        try:
            replies = await self._read(tables, models)
        except UNAVAILABLE as exc:
            self._trip(exc)
            return self._cached(tables, models, exc)
        self._down_until = 0.0
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
        """Write deltas atomically per scope, exactly once; on outage buffer them (never raises)."""
        now = self._clock()
        items = self._accept(deltas, now)
        if not items:
            return
        if len(self._buffer) or self._down():
            self._note_drops(self._buffer.extend(items))
            if not self._down():
                await self.flush()
            return
        failed, _ = await self._send(pending.form(items, now, self._half_life, self._monotonic()), now)
        self._note_drops(self._buffer.keep_batches(failed))

    async def flush(self) -> bool:
        """Try to write everything buffered now; whether the buffer is empty afterwards.

        In-doubt batches go first, each under its own token; loose deltas are formed into new
        batches only once Redis answered that pipeline (so they are never put in doubt by an
        outage they were not sent into).
        """
        async with self._lock:
            now = self._clock()
            failed, answered = await self._send(self._unexpired(self._buffer.take_batches()), now)
            if answered and len(self._buffer):
                loose = self._buffer.take()
                more, _ = await self._send(pending.form(loose, now, self._half_life, self._monotonic()), now)
                failed += more
            self._note_drops(self._buffer.keep_batches(failed))
            return not len(self._buffer)

    def _accept(self, deltas: Sequence[Delta], now: float) -> list[Pending]:
        items = [(d, now) for d in deltas if decay.finite(d.successes, d.failures)]
        if len(items) != len(deltas):
            self.rejected_deltas += len(deltas) - len(items)
            self._warn.warn("reject", "skipping non-finite deltas in %r", deltas)
        return items

    def _unexpired(self, batches: list[Batch]) -> list[Batch]:
        """Batches whose token is surely still in Redis; older ones are dropped and counted
        (they may have been applied, and a retry could no longer tell)."""
        oldest = self._monotonic() - TOKEN_MARGIN * self._token_ttl
        kept = [b for b in batches if b.born > oldest]
        expired = sum(b.cells for b in batches) - sum(b.cells for b in kept)
        if expired:
            self._buffer.dropped += expired
            self._note_drops(expired, "in-doubt updates older than the token TTL")
        return kept

    def _note_drops(self, dropped: int, what: str = "oldest updates (buffer full)") -> None:
        if dropped:
            self._warn.warn(
                ("dropped", what), "dropped %d %s; %d in total", dropped, what, self.dropped_updates
            )

    async def _send(self, batches: list[Batch], now: float) -> tuple[list[Batch], bool]:
        """Run ``batches``; the ones Redis did not acknowledge (to resend under the same
        tokens) and whether Redis answered at all."""
        if not batches:
            return [], True
        try:
            results = await self._script.run(batches, now, self._half_life)
        except UNAVAILABLE as exc:
            self._trip(exc)
            return batches, False
        self._down_until = 0.0
        failed: list[Batch] = []
        for batch, result in zip(batches, results, strict=True):
            if isinstance(result, Exception):
                self._warn.warn(("apply", batch.scope), "apply to scope %s failed: %r", batch.scope, result)
                failed.append(batch)
            elif int(result) == ALREADY_APPLIED:
                self.replayed_batches += 1
            else:
                self.repaired_cells += int(result)
        return failed, True

    # -- outage bookkeeping ----------------------------------------------------------
    def _down(self) -> bool:
        return time.monotonic() < self._down_until

    def _trip(self, exc: BaseException) -> None:
        self._down_until = time.monotonic() + self._retry_s
        self._warn.warn("down", "Redis unavailable: %r", exc)

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
