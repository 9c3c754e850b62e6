"""Exactly-once Redis script calls by writer sequence numbers (the "idempotent producer").

Each writer (one RedisStore, one TrackingWriter per process) has a random id and numbers
its script calls 1, 2, 3... when it first sends them. A guarded script (SEQ_GUARD) keeps,
per writer and Redis Cluster slot, the highest seq it applied in one string key in that
slot (``{prefix}:seq:{<tag>}:<writer>``, TTL ``SEQ_TTL_S`` refreshed by every applied call),
and applies a call only if its seq is higher. Memory: at most one key (~100 bytes) per
live writer per slot touched (16 384 slots), independent of the request rate.

That high-water mark is exact only if, per writer and slot, no call with a lower seq that
was *not* applied can be resent after a higher one was applied. The writer guarantees it:

- one pipeline at a time per writer, calls in seq order (Redis runs a connection's
  commands in order, so after a lost reply the applied calls of each slot are a prefix);
- calls whose reply was lost (in doubt) are resent first, whole, in seq order, under
  their seqs; calls never sent before are numbered and sent only once Redis answered;
- within a pipeline each call names its predecessor in the same slot (``prev``): a call
  whose predecessor was not applied (an error reply: NOSCRIPT, OOM, READONLY...) is not
  applied either (NOT_APPLIED), so a failure never leaves a gap below an applied seq;
- a call Redis answered with an error or NOT_APPLIED was definitely not applied: it loses
  its seq and is numbered afresh when sent again;
- an in-doubt call is resent only while younger than SEQ_MARGIN x ``SEQ_TTL_S`` from its
  first send (its slot's key, refreshed when it was applied, surely still lives); older
  ones are dropped and counted.
"""

from __future__ import annotations

import functools
import itertools
import secrets
import string
from collections.abc import Iterable

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

SEQ_TTL_S = 86_400.0
"""Default lifetime of a writer's sequence key in a slot after its last applied call."""
SEQ_MARGIN = 0.9
"""An in-doubt call is resent only while younger than this fraction of the seq TTL."""
ALREADY_APPLIED = -1
"""Script reply: this seq was applied before (its reply was lost); nothing changed."""
NOT_APPLIED = -2
"""Script reply: the call's predecessor in the pipeline was not applied, so neither was it."""

SEQ_GUARD = """
-- KEYS[1]: this writer's seq key in the call's slot. ARGV[1]: the call's seq, ARGV[2]: seq of
-- the writer's previous call to this slot in the same pipeline (0 = none), ARGV[3]: TTL (s).
-- Seq already applied: -1, nothing changed. Predecessor not applied: -2, nothing changed.
-- Else records the seq (the first write, so OOM/READONLY reject the whole call) and goes on.
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) <= last then return -1 end
if tonumber(ARGV[2]) > last then return -2 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
"""


@functools.cache
def slot_tags() -> tuple[str, ...]:
    """For every Cluster slot, a short hash tag (1-3 letters/digits) that maps to it."""
    tags: dict[int, str] = {}
    alphabet = string.ascii_letters + string.digits
    for size in (1, 2, 3):
        for chars in itertools.product(alphabet, repeat=size):
            tag = "".join(chars)
            tags.setdefault(key_slot(tag.encode()), tag)
        if len(tags) == REDIS_CLUSTER_HASH_SLOTS:
            break
    return tuple(tags[slot] for slot in range(REDIS_CLUSTER_HASH_SLOTS))


class Sequencer:
    """One writer's id, its next seq, and its seq keys (under ``prefix``)."""

    def __init__(self, prefix: str, ttl_s: float = SEQ_TTL_S) -> None:
        if not ttl_s >= 1:
            raise ValueError(f"seq TTL must be >= 1 s, got {ttl_s}")
        self.writer = secrets.token_hex(8)
        self.ttl_s = float(ttl_s)
        self._ttl = str(int(-(-ttl_s // 1)))
        self._prefix = prefix
        self._last = 0

    def number(self) -> int:
        """The next seq (strictly increasing)."""
        self._last += 1
        return self._last

    def key(self, slot_key: str) -> str:
        """This writer's seq key in ``slot_key``'s Cluster slot."""
        tag = slot_tags()[key_slot(slot_key.encode())]
        return f"{self._prefix}:seq:{{{tag}}}:{self.writer}"

    def guards(self, calls: Iterable[tuple[str, int]]) -> list[tuple[str, str, str, str]]:
        """Per (slot key, seq) in pipeline order: the SEQ_GUARD key and arguments
        ``(seq key, seq, prev, ttl)``, ``prev`` chaining the calls of each slot."""
        prev: dict[str, int] = {}
        out = []
        for slot_key, seq in calls:
            key = self.key(slot_key)
            out.append((key, str(seq), str(prev.get(key, 0)), self._ttl))
            prev[key] = seq
        return out
