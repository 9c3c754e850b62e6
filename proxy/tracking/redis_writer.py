"""TrackingWriter: tracking script calls written to Redis exactly once, through outages.

Every call carries an idempotency token that its script sets first (``lua.once``, no extra
round trip), so a call resent after a lost reply changes nothing the second time (counted in
``replayed_writes``). Writes wait in a bounded Outbox (``buffer_limit`` calls; the oldest are
dropped and counted in ``dropped_updates``) until Redis acknowledges them: ``write`` sends at
once unless Redis is down, and the retry task ``start()`` runs, or the next ``write``, resends
the rest. After a failure, nothing goes to the network for ``retry_interval_s``.

In-doubt writes (sent, unacknowledged) are resent before fresh ones are sent, and fresh ones
only once Redis answered, so an outage puts in doubt at most the calls that were in flight.
An in-doubt write older than TOKEN_MARGIN x ``token_ttl_s`` is dropped and counted instead
of resent (its token may have expired: a resend could count twice).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio
from redis.exceptions import NoScriptError, RedisError

from policies.periodic import Periodic
from policies.redis_store import TOKEN_MARGIN, TOKEN_TTL_S
from policies.store_errors import WarnLimiter
from proxy.tracking.lua import ALREADY_APPLIED, Call
from proxy.tracking.outbox import Outbox, Write, token_key, writes

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
        token_ttl_s: float = TOKEN_TTL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not token_ttl_s >= 1:
            raise ValueError(f"token TTL must be >= 1 s, got {token_ttl_s}")
        self._client = client
        self._outbox = Outbox(buffer_limit)
        self._retry_s = retry_interval_s
        self._ttl = math.ceil(token_ttl_s)
        self._monotonic = monotonic
        self._down_until = 0.0
        self._lock = asyncio.Lock()
        self._retry = Periodic(retry_interval_s, self._flush_if_pending, "tracking-retry")
        self._warn = WarnLimiter()
        self.replayed_writes = self.failed_writes = 0

    @property
    def dropped_updates(self) -> int:
        return self._outbox.dropped

    @property
    def pending(self) -> int:
        return len(self._outbox)

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Start the task that resends buffered calls every ``retry_interval_s``."""
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
        """Buffer ``calls`` under new tokens and send them unless Redis is down;
        never raises."""
        self._note_drops(self._outbox.add(writes(calls)))
        if not self._down():
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
        """In-doubt writes whose token surely still lives; older ones dropped and counted."""
        oldest = self._monotonic() - TOKEN_MARGIN * self._ttl
        kept = [w for w in items if w.sent_at is not None and w.sent_at > oldest]
        if len(kept) < len(items):
            self._outbox.dropped += len(items) - len(kept)
            self._note_drops(len(items) - len(kept), "in-doubt tracking writes older than the token TTL")
        return kept

    async def _send(self, items: list[Write]) -> tuple[list[Write], bool]:
        """Run ``items`` in one pipeline; the unacknowledged ones and whether Redis answered."""
        if not items:
            return [], True
        now = self._monotonic()
        for item in items:
            item.sent_at = now if item.sent_at is None else item.sent_at
        try:
            results = await self._run(items)
        except NOT_ANSWERED as exc:
            self._trip(exc)
            return items, False
        self._down_until = 0.0
        return self._unacknowledged(items, results), True

    def _unacknowledged(self, items: list[Write], results: list[Any]) -> list[Write]:
        kept = []
        for item, result in zip(items, results, strict=True):
            if isinstance(result, Exception):
                self.failed_writes += 1
                self._warn.warn("reply", "tracking write failed, kept to resend: %r", result)
                kept.append(item)
            elif result == ALREADY_APPLIED:
                self.replayed_writes += 1
        return kept

    async def _run(self, items: list[Write]) -> list[Any]:
        """EVALSHA every write in one pipeline; scripts Redis lacks (restart, SCRIPT FLUSH)
        are loaded and only those writes run again."""
        results = await self._evalsha(items)
        missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if missing:
            for text in {items[i].call.script.text for i in missing}:
                await self._client.script_load(text)
            again = await self._evalsha([items[i] for i in missing])
            for i, result in zip(missing, again, strict=True):
                results[i] = result
        return results

    async def _evalsha(self, items: list[Write]) -> list[Any]:
        async with self._client.pipeline(transaction=False) as pipe:
            for item in items:
                call = item.call
                token = token_key(call.keys[0], item.token)
                pipe.evalsha(call.script.sha, 1 + len(call.keys), token, *call.keys, self._ttl, *call.args)
            return await pipe.execute(raise_on_error=False)

    # -- outage bookkeeping ----------------------------------------------------------
    def _down(self) -> bool:
        return self._monotonic() < self._down_until

    def _trip(self, exc: BaseException) -> None:
        self.failed_writes += 1
        self._down_until = self._monotonic() + self._retry_s
        self._warn.warn("down", "Redis unavailable for tracking writes (kept to resend): %r", exc)

    def _note_drops(self, dropped: int, what: str = "oldest tracking writes (buffer full)") -> None:
        if dropped:
            total = self.dropped_updates
            self._warn.warn(("dropped", what), "dropped %d %s; %d in total", dropped, what, total)
