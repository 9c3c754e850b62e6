"""TrackingWriter: tracking script calls written to Redis exactly once, through outages.

A SequencedWriter (storage.redis.writer) whose items are tracking entries
(proxy.tracking.redis_pending), coalesced per key while they wait: each entry is sent as one
script call under the writer's next seq (``lua.once`` checks it first, no extra round
trip), so a call resent after a lost reply changes nothing the second time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import NoScriptError, RedisError

from proxy.tracking.lua import Call
from proxy.tracking.redis_pending import Entry
from storage.errors import WarnLimiter
from storage.redis.breaker import Breaker
from storage.redis.client import Client
from storage.redis.sequence import NOT_APPLIED, SEQ_TTL_S, Sequencer
from storage.redis.writer import SequencedWriter


@dataclass(frozen=True, slots=True)
class Sent:
    """One entry's script call under its seq, formed at monotonic time ``born``."""

    seq: int
    born: float
    entry: Entry
    call: Call

    @property
    def cells(self) -> int:
        return 1


class TrackingCalls:
    """Entries as the SequencedWriter's calls: one EVALSHA each, guarded by its seq."""

    unanswered: tuple[type[BaseException], ...] = (RedisError, OSError)

    def __init__(self, client: Client, sequencer: Sequencer) -> None:
        self._client = client
        self._seq = sequencer
        self._follow_ups: list[Entry] = []

    def key(self, item: Entry) -> Hashable:
        return item.key

    def merge(self, older: Entry, newer: Entry) -> Entry:
        return older.merged(newer)

    def size(self, item: Entry) -> int:
        return item.size

    def shed(self, item: Entry) -> Entry | None:
        return item.shed()

    def form(self, items: list[Entry], now: float, born: float, number: Callable[[], int]) -> list[Sent]:
        return [Sent(number(), born, entry, entry.call()) for entry in items]

    def loose(self, call: Sent) -> list[Entry]:
        return [call.entry]

    def applied(self, call: Sent, reply: Any) -> None:
        """Keep what the entry asks to write after it (see ``Entry.follow_up``)."""
        self._follow_ups.extend(call.entry.follow_up(reply))

    def follow_ups(self) -> list[Entry]:
        taken, self._follow_ups = self._follow_ups, []
        return taken

    async def run(self, calls: Sequence[Sent], now: float) -> list[Any]:
        """EVALSHA every call in one pipeline; scripts Redis lacks (restart, SCRIPT FLUSH)
        are loaded and the calls left unapplied (NOSCRIPT, and NOT_APPLIED after it) run
        again under the same seqs."""
        results = await self._evalsha(calls)
        if any(isinstance(r, NoScriptError) for r in results):
            lacking = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
            for text in {calls[i].call.script.text for i in lacking}:
                await self._client.script_load(text)
            missing = [i for i, r in enumerate(results) if i in lacking or r == NOT_APPLIED]
            again = await self._evalsha([calls[i] for i in missing])
            for i, result in zip(missing, again, strict=True):
                results[i] = result
        return results

    async def _evalsha(self, calls: Sequence[Sent]) -> list[Any]:
        guards = self._seq.guards((sent.call.keys[0], sent.seq) for sent in calls)
        async with self._client.pipeline(transaction=False) as pipe:
            for sent, (seq_key, *seq_args) in zip(calls, guards, strict=True):
                call = sent.call
                pipe.evalsha(call.script.sha, 1 + len(call.keys), seq_key, *call.keys, *seq_args, *call.args)
            return await pipe.execute(raise_on_error=False)


class TrackingWriter:
    """Counters: dropped_updates, replayed_writes, failed_writes (pipelines Redis did not
    answer, and calls it answered with an error; both kept to resend), overflowed_records;
    ``pending`` counts entries buffered or sent and not yet answered. ``buffer_limit`` bounds distinct sums,
    ``buffer_bytes`` per-request parts (the oldest dropped, their entries' sums kept)."""

    def __init__(
        self,
        client: Client,
        *,
        buffer_limit: int = 100_000,
        buffer_bytes: int = 64 * 1024 * 1024,
        retry_interval_s: float = 1.0,
        prefix: str = "mm",
        seq_ttl_s: float = SEQ_TTL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``prefix`` is the key prefix of the writer's seq keys."""
        self._client = client
        warn = WarnLimiter()
        sequencer = Sequencer(prefix, seq_ttl_s)
        self._writer: SequencedWriter[Entry, Sent] = SequencedWriter(
            TrackingCalls(client, sequencer),
            sequencer,
            name="tracking writes",
            breaker=Breaker(
                retry_interval_s, warn, "Redis unavailable for tracking writes (kept to resend)", monotonic
            ),
            warn=warn,
            monotonic=monotonic,
            buffer_limit=buffer_limit,
            buffer_bytes=buffer_bytes,
            retry_interval_s=retry_interval_s,
        )

    @property
    def dropped_updates(self) -> int:
        return self._writer.dropped

    @property
    def pending(self) -> int:
        return self._writer.pending

    @property
    def overflowed_records(self) -> int:
        return self._writer.overflowed_records

    @property
    def record_bytes(self) -> int:
        return self._writer.record_bytes

    @property
    def record_bytes_limit(self) -> int:
        return self._writer.record_bytes_limit

    @property
    def replayed_writes(self) -> int:
        return self._writer.replayed

    @property
    def failed_writes(self) -> int:
        return self._writer.failed

    async def start(self) -> None:
        """Start the retry task."""
        await self._writer.start()

    async def close(self) -> None:
        """Stop the retry task and flush best-effort (the client is not closed here)."""
        await self._writer.close()

    async def write(self, entries: Sequence[Entry]) -> None:
        """Buffer ``entries`` and send them unless Redis is down; never raises."""
        await self._writer.write(entries)

    async def flush(self) -> bool:
        """Send what is buffered now; whether none is left."""
        return await self._writer.flush()
