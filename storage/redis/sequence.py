"""Exactly-once Redis script calls by writer sequence numbers (the "idempotent producer").

A guarded script applies a writer's call only if its seq is above the highest that writer
applied in that Cluster slot (one small key per writer and slot, with a TTL). Why that
high-water mark is exact, and what the writer must do for it: docs/storage.md.
"""

from __future__ import annotations

import functools
import itertools
import secrets
import string
from collections.abc import Iterable

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from policies.memo import BoundedMemo

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


KEYS_MEMO = 10_000
"""Slot keys whose seq key a Sequencer remembers before starting over."""


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
        self._keys: BoundedMemo[str, str] = BoundedMemo(self._seq_key, KEYS_MEMO)

    def number(self) -> int:
        """The next seq (strictly increasing)."""
        self._last += 1
        return self._last

    def key(self, slot_key: str) -> str:
        """This writer's seq key in ``slot_key``'s Cluster slot (remembered per slot key, at
        most KEYS_MEMO of them)."""
        return self._keys(slot_key)

    def _seq_key(self, slot_key: str) -> str:
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
