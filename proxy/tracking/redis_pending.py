"""Tracking writes waiting for Redis, as entries that coalesce per key.

Each entry becomes one guarded script call (``call``). Entries with equal ``key`` merge
(``merged``, in place: the buffer owns the entries it holds, so merging costs O(1) amortized
per request), so an outage holds one entry per agent's stats hash, per workflow, per index,
however many requests arrive (see storage.redis.coalesce). Per-request entries (decision
records, request-id lists, raw calls) have a ``size`` in bytes and are bounded by bytes.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from proxy.tracking import lua

RECORD_OVERHEAD = 232
"""Bytes counted per buffered record beyond its keys' and values' lengths: Python's object,
string and dict-slot overhead (measured: a decision record of ~270 bytes of JSON holds ~500)."""


class Entry(Protocol):
    """One buffered tracking write."""

    @property
    def key(self) -> Hashable: ...

    @property
    def size(self) -> int:
        """Bytes held for a per-request record; 0 for a sum."""
        ...

    def merged(self, newer: Any) -> Entry:
        """This entry then ``newer`` (same key, hence same kind) as one (``self``, updated)."""
        ...

    def call(self) -> lua.Call: ...

    def follow_up(self, reply: Any) -> list[Entry]:
        """Entries to write after this one was applied with ``reply``."""
        ...


class _Plain:
    """Entries with nothing to follow up."""

    __slots__ = ()

    def follow_up(self, reply: Any) -> list[Entry]:
        return []


def _add(into: dict[str, float], more: Mapping[str, float]) -> None:
    for name, amount in more.items():
        into[name] = into.get(name, 0.0) + amount


def _json(counts: Mapping[str, float]) -> bytes:
    """Counters as a JSON object of exact decimal strings."""
    return orjson.dumps({name: repr(amount) for name, amount in counts.items()})


@dataclass(slots=True)
class Stats:
    """HINCRBYFLOAT sums of one agent's stats hash; refreshes its TTL. When the call creates
    the hash (a new agent, or Redis lost its data), ``index`` (the agent's entry in the
    agents set) follows, so the index is repaired with the first write after a loss."""

    hash_key: str
    counts: dict[str, float]
    ttl_ms: int
    index: Members

    @property
    def key(self) -> Hashable:
        return ("stats", self.hash_key)

    @property
    def size(self) -> int:
        return 0

    def merged(self, newer: Stats) -> Stats:
        _add(self.counts, newer.counts)
        return self

    def call(self) -> lua.Call:
        return lua.Call(lua.STATS, (self.hash_key,), (_json(self.counts), self.ttl_ms))

    def follow_up(self, reply: Any) -> list[Entry]:
        index = self.index
        return [Members(index.set_key, set(index.members), index.ttl_ms)] if reply == 2 else []


@dataclass(slots=True)
class Latest(_Plain):
    """Members of a recent-workflows zset with the time each was last seen (kept the
    ``kept`` newest); members older than ``retention_s`` before the newest are trimmed."""

    zset_key: str
    seen: dict[str, float]
    ttl_ms: int
    retention_s: float
    kept: int

    @property
    def key(self) -> Hashable:
        return ("latest", self.zset_key)

    @property
    def size(self) -> int:
        return 0

    def merged(self, newer: Latest) -> Latest:
        seen = self.seen
        for member, at in newer.seen.items():
            seen[member] = max(at, seen.get(member, at))
        if len(seen) > 2 * self.kept:  # trimmed now and then: amortized O(1) per merge
            self.seen = dict(sorted(seen.items(), key=lambda kv: kv[1])[-self.kept :])
        return self

    def call(self) -> lua.Call:
        cutoff = repr(max(self.seen.values()) - self.retention_s)
        seen = orjson.dumps({m: repr(at) for m, at in self.seen.items()})
        return lua.Call(lua.LATEST, (self.zset_key,), (self.ttl_ms, cutoff, self.kept, seen))


@dataclass(slots=True)
class Members(_Plain):
    """Members added to a set (the agents index); refreshes its TTL."""

    set_key: str
    members: set[str]
    ttl_ms: int

    @property
    def key(self) -> Hashable:
        return ("members", self.set_key)

    @property
    def size(self) -> int:
        return 0

    def merged(self, newer: Members) -> Members:
        self.members |= newer.members
        return self

    def call(self) -> lua.Call:
        return lua.Call(lua.MEMBERS, (self.set_key,), (self.ttl_ms, *sorted(self.members)))


@dataclass(slots=True)
class Timeline(_Plain):
    """HINCRBYFLOAT sums of one agent-hour of per-minute counters (the dashboard's charts);
    refreshes its TTL."""

    hash_key: str
    decisions_key: str
    counts: dict[str, float]
    ttl_ms: int

    @property
    def key(self) -> Hashable:
        return ("timeline", self.hash_key)

    @property
    def size(self) -> int:
        return 0

    def merged(self, newer: Timeline) -> Timeline:
        _add(self.counts, newer.counts)
        return self

    def call(self) -> lua.Call:
        keys = (self.hash_key, self.decisions_key)
        return lua.Call(lua.TIMELINE, keys, (_json(self.counts), self.ttl_ms, b"", 1))


@dataclass(slots=True)
class Workflow(_Plain):
    """A workflow hash's first/last seen and HINCRBYFLOAT sums; refreshes its retention."""

    hash_key: str
    first: float
    last: float
    counts: dict[str, float]
    ttl_ms: int

    @property
    def key(self) -> Hashable:
        return ("workflow", self.hash_key)

    @property
    def size(self) -> int:
        return 0

    def merged(self, newer: Workflow) -> Workflow:
        self.first, self.last = min(self.first, newer.first), max(self.last, newer.last)
        _add(self.counts, newer.counts)
        return self

    def call(self) -> lua.Call:
        keys = (self.hash_key, self.hash_key + ":reqs")
        args = (self.ttl_ms, repr(self.first), repr(self.last), _json(self.counts))
        return lua.Call(lua.WORKFLOW, keys, args)


@dataclass(slots=True)
class RequestIds(_Plain):
    """Request ids appended to a workflow's list (the ``kept`` newest); a per-request record."""

    hash_key: str
    ids: list[str]
    ttl_ms: int
    kept: int
    size: int = field(init=False)
    """Bytes held (kept up to date by ``merged``)."""

    def __post_init__(self) -> None:
        self.size = RECORD_OVERHEAD + _id_bytes(self.ids)

    @property
    def key(self) -> Hashable:
        return ("ids", self.hash_key)

    def merged(self, newer: RequestIds) -> RequestIds:
        self.ids.extend(newer.ids)
        self.size += _id_bytes(newer.ids)
        if len(self.ids) > 2 * self.kept:  # trimmed now and then: amortized O(1) per merge
            self.size -= _id_bytes(self.ids[: -self.kept])
            del self.ids[: -self.kept]
        return self

    def call(self) -> lua.Call:
        keys = (self.hash_key, self.hash_key + ":reqs")
        return lua.Call(lua.REQUEST_IDS, keys, (self.ttl_ms, self.kept, *self.ids[-self.kept :]))


def _id_bytes(ids: list[str]) -> int:
    return sum(len(i) + 8 for i in ids)


@dataclass(frozen=True, slots=True)
class Record(_Plain):
    """A decision record (replaces its hash); a per-request record."""

    hash_key: str
    fields: bytes
    ttl_ms: int

    @property
    def key(self) -> Hashable:
        return ("record", self.hash_key)

    @property
    def size(self) -> int:
        return RECORD_OVERHEAD + len(self.hash_key) + len(self.fields)

    def merged(self, newer: Record) -> Record:
        return newer

    def call(self) -> lua.Call:
        return lua.Call(lua.PUT, (self.hash_key,), (self.ttl_ms, self.fields))


@dataclass(frozen=True, slots=True)
class Raw(_Plain):
    """Any script call, on its own (never merged); a record of its arguments' size."""

    raw: lua.Call

    @property
    def key(self) -> Hashable:
        return ("raw", id(self))

    @property
    def size(self) -> int:
        parts = [*self.raw.keys, *self.raw.args]
        return RECORD_OVERHEAD + sum(len(p) if isinstance(p, str | bytes) else 8 for p in parts)

    def merged(self, newer: Raw) -> Raw:
        return newer

    def call(self) -> lua.Call:
        return self.raw
