"""SequencedWriter: script calls written to Redis exactly once, through outages.

The one writer behind the posterior store and tracking: loose items coalesce by key in a
bounded buffer; a flush numbers them into calls (``Calls.form``) and runs them in one
pipeline, in-doubt calls first under their seqs. Its side of the exactly-once contract and
the buffer bounds: docs/storage.md.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from storage.errors import LOG, WarnLimiter
from storage.periodic import Periodic
from storage.redis.breaker import Breaker
from storage.redis.coalesce import Coalesced, Rules
from storage.redis.sequence import ALREADY_APPLIED, NOT_APPLIED, SEQ_MARGIN, Sequencer, slot_tags

Item = TypeVar("Item")



class Numbered(Protocol):
    """A formed call: its seq, the monotonic time it was formed, and how many cells it holds."""

    @property
    def seq(self) -> int: ...

    @property
    def born(self) -> float: ...

    @property
    def cells(self) -> int: ...


Call = TypeVar("Call", bound=Numbered)


class Calls(Rules[Item], Protocol[Item, Call]):
    """How one kind of write coalesces while loose, becomes guarded script calls, and back."""

    unanswered: tuple[type[BaseException], ...]
    """Errors of a pipeline after which each of its calls may or may not have been applied."""

    def form(self, items: list[Item], now: float, born: float, number: Callable[[], int]) -> list[Call]:
        """Loose items (oldest first) as calls numbered by ``number`` in order."""
        ...

    def loose(self, call: Call) -> list[Item]:
        """A call that was not applied, as loose items again."""
        ...

    async def run(self, calls: Sequence[Call], now: float) -> list[Any]:
        """Run ``calls`` in one pipeline, guarded by their seqs; per call the script's reply
        (ALREADY_APPLIED, NOT_APPLIED, another value: applied) or the error Redis answered.
        Raises one of ``unanswered`` when Redis did not answer."""
        ...

    def applied(self, call: Call, reply: Any) -> None:
        """Called for every call Redis applied now, with its reply."""
        ...

    def follow_ups(self) -> list[Item]:
        """Items the calls applied since the last ask want written next (taken)."""
        ...


class Buffer(Generic[Item, Call]):
    """Loose items coalesced by key (``storage.redis.coalesce``) and in-doubt calls; ``len``
    counts entries and in-doubt cells. In-doubt calls are never dropped for room: they are at
    most what one flush formed."""

    def __init__(self, rules: Rules[Item], max_keys: int, max_bytes: int) -> None:
        self.loose_items: Coalesced[Item] = Coalesced(rules, max_keys=max_keys, max_bytes=max_bytes)
        self.expired = 0
        self._doubt: deque[Call] = deque()
        self._doubt_cells = 0

    def __len__(self) -> int:
        return len(self.loose_items) + self._doubt_cells

    @property
    def dropped(self) -> int:
        return self.loose_items.dropped + self.expired

    @property
    def loose(self) -> int:
        return len(self.loose_items)

    def extend(self, items: Iterable[Item]) -> int:
        """Merge in the newest loose items; how many were dropped for want of room."""
        return self.loose_items.add(items)

    def restore(self, items: Sequence[Item]) -> int:
        """Merge loose items that were not applied back in, ahead of newer ones; drops counted."""
        return self.loose_items.restore(items)

    def take_loose(self) -> list[Item]:
        return self.loose_items.take()

    def take_doubt(self) -> list[Call]:
        calls = list(self._doubt)
        self._doubt.clear()
        self._doubt_cells = 0
        return calls

    def keep_doubt(self, calls: Sequence[Call]) -> int:
        """Hold in-doubt calls (in seq order) ahead of loose items; nothing is dropped."""
        self._doubt.extend(calls)
        self._doubt_cells += sum(c.cells for c in calls)
        return 0


class SequencedWriter(Generic[Item, Call]):
    """Counters: ``dropped`` (cells), ``replayed`` (resent calls Redis had applied before),
    ``failed`` (pipelines Redis did not answer, and calls it answered with an error);
    ``pending`` is the number of cells not yet known written: buffered, or in a call sent and
    not yet answered."""

    def __init__(
        self,
        calls: Calls[Item, Call],
        sequencer: Sequencer,
        *,
        name: str,
        breaker: Breaker,
        warn: WarnLimiter,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        buffer_limit: int = 100_000,
        buffer_bytes: int = 64 * 1024 * 1024,
        retry_interval_s: float = 1.0,
    ) -> None:
        """``calls`` guard their script calls with ``sequencer`` (the writer numbers them);
        ``name`` names the writes in logs; ``clock`` is the ``now`` given to form and run.
        ``buffer_limit`` bounds distinct loose sums, ``buffer_bytes`` loose records (see
        storage.redis.coalesce)."""
        self._calls = calls
        self._name = name
        self._breaker = breaker
        self._warn = warn
        self._clock = clock
        self._monotonic = monotonic
        self._buffer: Buffer[Item, Call] = Buffer(calls, buffer_limit, buffer_bytes)

        self._seq = sequencer
        self._lock = asyncio.Lock()
        self._retry = Periodic(retry_interval_s, self._flush_if_pending, f"{name}-retry")
        self.replayed = self.failed = 0
        self._in_flight = 0

    @property
    def pending(self) -> int:
        return len(self._buffer) + self._in_flight

    @property
    def dropped(self) -> int:
        return self._buffer.dropped

    @property
    def overflowed_records(self) -> int:
        """Per-request records dropped because their byte bound was full."""
        return self._buffer.loose_items.overflowed

    @property
    def record_bytes(self) -> int:
        """Bytes of per-request records waiting now."""
        return self._buffer.loose_items.bytes

    @property
    def record_bytes_limit(self) -> int:
        return self._buffer.loose_items.max_bytes

    @property
    def down(self) -> bool:
        """Whether writes skip the network now (Redis failed recently)."""
        return self._breaker.open

    async def start(self) -> None:
        """Start the retry task, after building the slot-tag table in a thread (~0.2 s of CPU
        the first write would otherwise spend on the event loop)."""
        await asyncio.to_thread(slot_tags)
        self._retry.start()

    async def close(self) -> bool:
        """Stop the retry task and flush best-effort; whether nothing is left unwritten."""
        await self._retry.stop()
        if await self.flush():
            return True
        LOG.error("closing with %d %s unwritten (Redis unavailable)", self.pending, self._name)
        return False

    async def write(self, items: Sequence[Item]) -> None:
        """Buffer ``items`` and send them unless Redis is down; never raises."""
        self._note_drops(self._buffer.extend(items))
        if not self._breaker.open:
            await self.flush()

    async def flush(self) -> bool:
        """Send in-doubt calls, then (if Redis answered) the loose items; whether none are left."""
        async with self._lock:
            now = self._clock()
            doubt, answered = await self._send(self._unexpired(self._buffer.take_doubt()), now)
            if answered and self._buffer.loose:
                formed = self._calls.form(self._buffer.take_loose(), now, self._monotonic(), self._seq.number)
                more, answered = await self._send(formed, now)
                doubt += more
            follow = self._calls.follow_ups()
            if follow and answered:  # what the applied calls asked for, in the same flush
                formed = self._calls.form(follow, now, self._monotonic(), self._seq.number)
                more, _ = await self._send(formed, now)
                doubt += more
                follow = self._calls.follow_ups()
            self._note_drops(self._buffer.extend(follow))
            self._note_drops(self._buffer.keep_doubt(doubt))
            return not self.pending

    def _unexpired(self, calls: list[Call]) -> list[Call]:
        """In-doubt calls whose seq key surely still lives; older ones dropped and counted
        (they may have been applied, and a resend could no longer tell)."""
        oldest = self._monotonic() - SEQ_MARGIN * self._seq.ttl_s
        kept = [c for c in calls if c.born > oldest]
        expired = sum(c.cells for c in calls) - sum(c.cells for c in kept)
        if expired:
            self._buffer.expired += expired
            self._note_drops(expired, f"in-doubt {self._name} older than the seq TTL")
        return kept

    async def _send(self, calls: list[Call], now: float) -> tuple[list[Call], bool]:
        """Run ``calls``; the ones left in doubt and whether Redis answered. Calls answered as
        not applied are loose again."""
        if not calls:
            return [], True
        sending = sum(call.cells for call in calls)
        self._in_flight += sending
        try:
            replies = await self._calls.run(calls, now)
        except self._calls.unanswered as exc:
            self.failed += 1
            self._breaker.trip(exc)
            return calls, False
        finally:
            self._in_flight -= sending
        self._breaker.reset()
        replied = zip(calls, replies, strict=True)
        unapplied = [call for call, reply in replied if not self._answered(call, reply)]
        again = [item for call in unapplied for item in self._calls.loose(call)]
        self._note_drops(self._buffer.restore(again))
        return [], True

    def _answered(self, call: Call, reply: Any) -> bool:
        """Count one reply; whether the call is done with (applied now or before)."""
        if isinstance(reply, Exception):
            self.failed += 1
            self._warn.warn(("reply", self._name), "%s write failed, kept to resend: %r", self._name, reply)
            return False
        if reply == NOT_APPLIED:
            return False
        if reply == ALREADY_APPLIED:
            self.replayed += 1
        else:
            self._calls.applied(call, reply)
        return True

    async def _flush_if_pending(self) -> None:
        if self.pending:
            await self.flush()

    def _note_drops(self, dropped: int, what: str = "") -> None:
        if dropped:
            what = what or f"{self._name} (buffer full)"
            self._warn.warn(("dropped", what), "dropped %d %s; %d in total", dropped, what, self.dropped)
