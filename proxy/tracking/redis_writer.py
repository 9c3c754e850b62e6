"""TrackingWriter: tracking script calls written to Redis exactly once, through outages.

Every call carries the writer's id and a sequence number that its script checks and records
first (``lua.once``, no extra round trip), so a call resent after a lost reply changes
nothing the second time (counted in ``replayed_writes``); the contract and its memory cost
(one small key per writer and Cluster slot written) are in storage.redis.sequence. Writes wait
in a bounded Outbox (``buffer_limit`` calls; the oldest are dropped and counted in
``dropped_updates``) until Redis acknowledges them: ``write`` sends at once unless Redis is
down, and the retry task ``start()`` runs, or the next ``write``, resends the rest. After a
failure, nothing goes to the network for ``retry_interval_s``.

One pipeline at a time (a lock). In-doubt writes (reply lost) are resent first, under their
seqs, and fresh ones are numbered and sent only once Redis answered, so an outage puts in
doubt at most the calls that were in flight. An in-doubt write older than SEQ_MARGIN x
``seq_ttl_s`` (default 1 day) is dropped and counted instead of resent (its seq key may have
expired: a resend could count twice). A write Redis answered with an error was not applied:
it is kept, fresh again, and resent under a new seq.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio
from redis.exceptions import NoScriptError, RedisError

from proxy.tracking.lua import Call
from proxy.tracking.outbox import Outbox, Write, writes
from storage.errors import WarnLimiter
from storage.periodic import Periodic
from storage.redis.breaker import Breaker
from storage.redis.sequence import ALREADY_APPLIED, NOT_APPLIED, SEQ_MARGIN, SEQ_TTL_S, Sequencer, slot_tags

log = logging.getLogger("model_manager.tracking")

NOT_ANSWERED: tuple[type[BaseException], ...] = (RedisError, OSError)
"""Pipeline errors after which every write of the pipeline is kept (Redis may have seen it)."""


class TrackingWriter:
    """Counters: dropped_updates, replayed_writes, failed_writes (pipelines or calls that
    failed and were kept); ``pending`` is the number of buffered calls."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        buffer_limit: int = 10_000,
        retry_interval_s: float = 1.0,
        prefix: str = "mm",
        seq_ttl_s: float = SEQ_TTL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``prefix`` is the key prefix of the writer's seq keys."""
        self._client = client
        self._seq = Sequencer(prefix, seq_ttl_s)
        self._outbox = Outbox(buffer_limit)
        self._monotonic = monotonic
        self._lock = asyncio.Lock()
        self._retry = Periodic(retry_interval_s, self._flush_if_pending, "tracking-retry")
        self._warn = WarnLimiter()
        self._breaker = Breaker(
            retry_interval_s, self._warn, "Redis unavailable for tracking writes (kept to resend)", monotonic
        )
        self.replayed_writes = self.failed_writes = 0

    @property
    def dropped_updates(self) -> int:
        return self._outbox.dropped

    @property
    def pending(self) -> int:
        return len(self._outbox)

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Start the task that resends buffered calls every ``retry_interval_s``, after
        building the slot-tag table in a thread (~0.2 s of CPU the first write would
        otherwise spend on the event loop)."""
        await asyncio.to_thread(slot_tags)
        self._retry.start()

    async def close(self) -> None:
        """Stop the retry task and flush best-effort (the client is not closed here)."""
        await self._retry.stop()
        if not await self.flush():
            log.error("closing with %d tracking writes unwritten (Redis unavailable)", self.pending)

    async def _flush_if_pending(self) -> None:
        if self.pending:
            await self.flush()

    # -- writes ----------------------------------------------------------------------
    async def write(self, calls: Sequence[Call]) -> None:
        """Buffer ``calls`` and send them unless Redis is down; never raises."""
        self._note_drops(self._outbox.add(writes(calls)))
        if not self._breaker.open:
            await self.flush()

    async def flush(self) -> bool:
        """Send in-doubt writes, then (if Redis answered) fresh ones; whether none are left."""
        async with self._lock:
            doubt = self._unexpired(self._outbox.take_in_doubt())
            kept, answered = await self._send(doubt)
            if answered:
                more, _ = await self._send(self._outbox.take_fresh())
                kept += more
            self._note_drops(self._outbox.put_back(kept))
            return not self.pending

    def _unexpired(self, items: list[Write]) -> list[Write]:
        """In-doubt writes whose seq key surely still lives; older ones dropped and counted."""
        oldest = self._monotonic() - SEQ_MARGIN * self._seq.ttl_s
        kept = [w for w in items if w.sent_at is not None and w.sent_at > oldest]
        if len(kept) < len(items):
            self._outbox.dropped += len(items) - len(kept)
            self._note_drops(len(items) - len(kept), "in-doubt tracking writes older than the seq TTL")
        return kept

    async def _send(self, items: list[Write]) -> tuple[list[Write], bool]:
        """Run ``items`` in one pipeline (fresh ones numbered now, in order); the
        unacknowledged ones and whether Redis answered."""
        if not items:
            return [], True
        now = self._monotonic()
        for item in items:
            if item.seq is None:
                item.seq, item.sent_at = self._seq.number(), now
        try:
            results = await self._run(items)
        except NOT_ANSWERED as exc:
            self.failed_writes += 1
            self._breaker.trip(exc)
            return items, False
        self._breaker.reset()
        return self._unacknowledged(items, results), True

    def _unacknowledged(self, items: list[Write], results: list[Any]) -> list[Write]:
        """Writes Redis answered as not applied, made fresh again; counts the rest."""
        kept = []
        for item, result in zip(items, results, strict=True):
            if isinstance(result, Exception):
                self.failed_writes += 1
                self._warn.warn("reply", "tracking write failed, kept to resend: %r", result)
            elif result == ALREADY_APPLIED:
                self.replayed_writes += 1
            if isinstance(result, Exception) or result == NOT_APPLIED:
                item.unsent()
                kept.append(item)
        return kept

    async def _run(self, items: list[Write]) -> list[Any]:
        """EVALSHA every write in one pipeline; scripts Redis lacks (restart, SCRIPT FLUSH)
        are loaded and the writes left unapplied (NOSCRIPT, and NOT_APPLIED after it) run
        again under the same seqs."""
        results = await self._evalsha(items)
        if any(isinstance(r, NoScriptError) for r in results):
            lacking = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
            for text in {items[i].call.script.text for i in lacking}:
                await self._client.script_load(text)
            missing = [i for i, r in enumerate(results) if i in lacking or r == NOT_APPLIED]
            again = await self._evalsha([items[i] for i in missing])
            for i, result in zip(missing, again, strict=True):
                results[i] = result
        return results

    async def _evalsha(self, items: list[Write]) -> list[Any]:
        guards = self._seq.guards((item.call.keys[0], item.seq or 0) for item in items)
        async with self._client.pipeline(transaction=False) as pipe:
            for item, guard in zip(items, guards, strict=True):
                call, (seq_key, *seq_args) = item.call, guard
                pipe.evalsha(call.script.sha, 1 + len(call.keys), seq_key, *call.keys, *seq_args, *call.args)
            return await pipe.execute(raise_on_error=False)

    # -- outage bookkeeping ----------------------------------------------------------
    def _note_drops(self, dropped: int, what: str = "oldest tracking writes (buffer full)") -> None:
        if dropped:
            total = self.dropped_updates
            self._warn.warn(("dropped", what), "dropped %d %s; %d in total", dropped, what, total)
