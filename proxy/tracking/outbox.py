"""Tracking writes waiting for Redis: script calls, each under its own idempotency token.

A write is *fresh* until it is first sent; from then on it is *in doubt* until Redis
acknowledges it (its reply may have been lost after Redis applied it), and it is only ever
resent whole under the same token. Writes are never merged, so the token is chosen when the
write is made; ``sent_at`` records when Redis could first have seen it (its token's TTL
cannot have started earlier).
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from proxy.tracking.lua import Call


@dataclass(slots=True)
class Write:
    """One script call and its token; ``sent_at`` (monotonic) is None until first sent."""

    call: Call
    token: str
    sent_at: float | None = None


def writes(calls: Iterable[Call]) -> list[Write]:
    """Fresh writes for ``calls``, each with a new random token."""
    return [Write(call, uuid.uuid4().hex) for call in calls]


def token_key(key: str, token: str) -> str:
    """A key in ``key``'s Redis Cluster slot that marks write ``token`` applied.

    Keys with a hash tag keep it (``p:{a}:stats`` -> ``p:{a}:stats:applied:<token>``); a key
    without one becomes the tag (``p:wfs`` -> ``{p:wfs}:applied:<token>``, same slot).
    """
    start = key.find("{")
    end = key.find("}", start + 1) if start >= 0 else -1
    if end > start + 1:
        return f"{key}:applied:{token}"
    return f"{{{key}}}:applied:{token}"


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
        """Return unacknowledged writes (oldest first) ahead of newer ones; drops counted."""
        self._doubt.extendleft(reversed([w for w in items if w.sent_at is not None]))
        self._fresh.extendleft(reversed([w for w in items if w.sent_at is None]))
        return self._trim()

    def _trim(self) -> int:
        dropped = 0
        while len(self) > self.limit:
            (self._doubt or self._fresh).popleft()
            dropped += 1
        self.dropped += dropped
        return dropped
