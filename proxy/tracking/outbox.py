"""Tracking writes waiting for Redis: script calls, numbered when first sent.

A write is *fresh* until it is sent: it then gets the writer's next sequence number (see
storage.redis.sequence). If its reply is lost it is *in doubt* (Redis may have applied it) and is
only ever resent whole under the same seq, before any fresh write. A write Redis answered as
not applied (an error reply) loses its seq and is fresh again. ``sent_at`` records when
Redis could first have seen it under its seq.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from proxy.tracking.lua import Call


@dataclass(slots=True)
class Write:
    """One script call; ``seq`` and ``sent_at`` (monotonic) are None while it is fresh."""

    call: Call
    seq: int | None = None
    sent_at: float | None = None

    def unsent(self) -> None:
        """Redis answered that this write was not applied: fresh again."""
        self.seq = self.sent_at = None


def writes(calls: Iterable[Call]) -> list[Write]:
    """Fresh writes for ``calls``."""
    return [Write(call) for call in calls]


class Outbox:
    """Bounded in-doubt and fresh writes, oldest first; ``len`` counts writes.

    When over ``limit`` the oldest are dropped and counted in ``dropped``: in-doubt writes
    first (they are older), then the oldest fresh ones.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"buffer limit must be >= 1, got {limit}")
        self.limit = limit
        self.dropped = 0
        self._doubt: deque[Write] = deque()
        self._fresh: deque[Write] = deque()

    def __len__(self) -> int:
        return len(self._doubt) + len(self._fresh)

    def add(self, items: Iterable[Write]) -> int:
        """Append the newest fresh writes; how many old ones were dropped to make room."""
        self._fresh.extend(items)
        return self._trim()

    def take_in_doubt(self) -> list[Write]:
        """Remove and return the in-doubt writes, oldest first."""
        items = list(self._doubt)
        self._doubt.clear()
        return items

    def take_fresh(self) -> list[Write]:
        """Remove and return the fresh writes, oldest first."""
        items = list(self._fresh)
        self._fresh.clear()
        return items

    def put_back(self, items: Sequence[Write]) -> int:
        """Return unacknowledged writes ahead of newer ones (in-doubt ones in seq order, fresh
        ones oldest first); drops counted."""
        doubt = sorted((w for w in items if w.seq is not None), key=lambda w: w.seq or 0)
        self._doubt.extendleft(reversed(doubt))
        self._fresh.extendleft(reversed([w for w in items if w.seq is None]))
        return self._trim()

    def _trim(self) -> int:
        dropped = 0
        while len(self) > self.limit:
            (self._doubt or self._fresh).popleft()
            dropped += 1
        self.dropped += dropped
        return dropped
