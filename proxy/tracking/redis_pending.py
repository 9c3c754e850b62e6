"""Tracking writes waiting for Redis, as entries that coalesce per key.

Each entry becomes one guarded script call (``call``) on keys of one hash tag. Entries with
equal ``key`` merge (``merged``, in place: the buffer owns the entries it holds, so merging
costs O(1) amortized per request), so an outage holds one entry per agent (stats, timeline
hours, recent decisions and workflows), per workflow (counts, request ids), per index,
however many requests arrive (see storage.redis.coalesce). Per-request parts (decision
records, recent-decision entries, request ids) have a ``size`` in bytes and are bounded by
bytes: past the bound an entry's per-request parts are dropped and its sums kept (``shed``).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, Self

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
        """Bytes held of per-request parts (records); 0 for a sum."""
        ...

    def merged(self, newer: Any) -> Entry:
        """This entry then ``newer`` (same key, hence same kind) as one (``self``, updated)."""
        ...

    def shed(self) -> Entry | None:
        """This entry without its per-request parts (a sum), or None when nothing is left."""
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


class _Sum(_Plain):
    """Entries without per-request parts."""

    __slots__ = ()

    @property
    def size(self) -> int:
        return 0

    def shed(self) -> Self:
        return self


def _add(into: dict[str, float], more: Mapping[str, float]) -> None:
    for name, amount in more.items():
        into[name] = into.get(name, 0.0) + amount


def _json(counts: Mapping[str, float]) -> bytes:
    """Counters as a JSON object of exact decimal strings."""
    return orjson.dumps({name: repr(amount) for name, amount in counts.items()})


def _bytes(items: Sequence[str | bytes]) -> int:
    """Bytes counted for buffered request ids or decision entries."""
    return sum(len(item) + 8 for item in items)


def _trimmed(items: list[Any], kept: int) -> int:
    """Drop all but the ``kept`` newest (last) of ``items`` once they exceed twice that
    (amortized O(1) per merge); the bytes dropped."""
    if len(items) <= 2 * kept:
        return 0
    dropped = _bytes(items[:-kept])
    del items[:-kept]
    return dropped


@dataclass(slots=True)
class Agent:
    """One agent's writes, all keys of its hash tag, in one call: HINCRBYFLOAT sums of its
    stats hash (TTL ``stats_ttl_ms``, 0 = none) and of its epoch-hour hashes of per-minute
    counters (``hours``: hash key -> counts), its newest recent-decision entries pushed on
    its list (trimmed to ``kept``; hours and list TTL ``ttl_ms``), and its recent-workflows
    zset (``workflows``, written as Latest's call would; nothing when it has no member).

    The decision entries are per-request parts: ``size`` counts their bytes (so they are
    bounded by the buffer's byte bound) and ``shed`` drops them, keeping the sums. When the
    call creates the stats hash (a new agent, or Redis lost its data), ``index`` (the agent's
    entry in the agents set) follows, so the index is repaired with the first write after a
    loss."""

    stats_key: str
    decisions_key: str
    counts: dict[str, float]
    hours: dict[str, dict[str, float]]
    decisions: list[bytes]
    stats_ttl_ms: int
    ttl_ms: int
    kept: int
    workflows: Latest
    index: Members
    size: int = field(init=False)
    """Bytes held (kept up to date by ``merged`` and ``shed``)."""

    def __post_init__(self) -> None:
        self.size = RECORD_OVERHEAD + _bytes(self.decisions) if self.decisions else 0

    @property
    def key(self) -> Hashable:
        return ("agent", self.stats_key)

    def merged(self, newer: Agent) -> Agent:
        _add(self.counts, newer.counts)
        hours = self.hours
        for hour, counts in newer.hours.items():
            _add(hours.setdefault(hour, {}), counts)
        self.workflows.merged(newer.workflows)
        if newer.decisions:
            self.size = self.size or RECORD_OVERHEAD
            self.decisions.extend(newer.decisions)
            self.size += _bytes(newer.decisions)
            self.size -= _trimmed(self.decisions, self.kept)
        return self

    def shed(self) -> Agent:
        self.decisions.clear()
        self.size = 0
        return self

    def call(self) -> lua.Call:
        hours, workflows = self.hours, self.workflows
        keys = (self.stats_key, self.decisions_key, workflows.zset_key, *hours)
        head = (_json(self.counts), self.stats_ttl_ms, self.ttl_ms, self.kept)
        latest = workflows.args() if workflows.seen else (0, 0, 0, b"")
        args = (*head, *latest, *map(_json, hours.values()), *self.decisions[-self.kept :])
        return lua.Call(lua.AGENT, keys, args)

    def follow_up(self, reply: Any) -> list[Entry]:
        index = self.index
        return [Members(index.set_key, set(index.members), index.ttl_ms)] if reply == 2 else []


@dataclass(slots=True)
class Latest(_Sum):
    """Members of a recent-workflows zset with the time each was last seen (kept the
    ``kept`` newest); members older than ``retention_s`` before the newest are trimmed.
    ``seen`` may be empty only inside an Agent (nothing to write)."""

    zset_key: str
    seen: dict[str, float]
    ttl_ms: int
    retention_s: float
    kept: int

    @property
    def key(self) -> Hashable:
        return ("latest", self.zset_key)

    def merged(self, newer: Latest) -> Latest:
        seen = self.seen
        for member, at in newer.seen.items():
            seen[member] = max(at, seen.get(member, at))
        if len(seen) > 2 * self.kept:  # trimmed now and then: amortized O(1) per merge
            self.seen = dict(sorted(seen.items(), key=lambda kv: kv[1])[-self.kept :])
        return self

    def args(self) -> tuple[int, str, int, bytes]:
        """LATEST's arguments (``seen`` must not be empty)."""
        cutoff = repr(max(self.seen.values()) - self.retention_s)
        seen = orjson.dumps({m: repr(at) for m, at in self.seen.items()})
        return self.ttl_ms, cutoff, self.kept, seen

    def call(self) -> lua.Call:
        return lua.Call(lua.LATEST, (self.zset_key,), self.args())


@dataclass(slots=True)
class Members(_Sum):
    """Members added to a set (the agents index); refreshes its TTL."""

    set_key: str
    members: set[str]
    ttl_ms: int

    @property
    def key(self) -> Hashable:
        return ("members", self.set_key)

    def merged(self, newer: Members) -> Members:
        self.members |= newer.members
        return self

    def call(self) -> lua.Call:
        return lua.Call(lua.MEMBERS, (self.set_key,), (self.ttl_ms, *sorted(self.members)))


@dataclass(slots=True)
class Workflow(_Plain):
    """A workflow hash's first/last seen and HINCRBYFLOAT sums, and request ids appended to
    its list (the ``kept`` newest), in one call; refreshes the retention of both. The ids are
    per-request parts: ``size`` counts their bytes and ``shed`` drops them, keeping the sums."""

    hash_key: str
    first: float
    last: float
    counts: dict[str, float]
    ids: list[str]
    ttl_ms: int
    kept: int
    size: int = field(init=False)
    """Bytes held (kept up to date by ``merged`` and ``shed``)."""

    def __post_init__(self) -> None:
        self.size = RECORD_OVERHEAD + _bytes(self.ids) if self.ids else 0

    @property
    def key(self) -> Hashable:
        return ("workflow", self.hash_key)

    def merged(self, newer: Workflow) -> Workflow:
        self.first, self.last = min(self.first, newer.first), max(self.last, newer.last)
        _add(self.counts, newer.counts)
        if newer.ids:
            self.size = self.size or RECORD_OVERHEAD
            self.ids.extend(newer.ids)
            self.size += _bytes(newer.ids)
            self.size -= _trimmed(self.ids, self.kept)
        return self

    def shed(self) -> Workflow:
        self.ids.clear()
        self.size = 0
        return self

    def call(self) -> lua.Call:
        keys = (self.hash_key, self.hash_key + ":reqs")
        args = (self.ttl_ms, repr(self.first), repr(self.last), _json(self.counts), self.kept)
        return lua.Call(lua.WORKFLOW, keys, (*args, *self.ids[-self.kept :]))


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

    def shed(self) -> Entry | None:
        return None

    def call(self) -> lua.Call:
        return lua.Call(lua.PUT, (self.hash_key,), (self.ttl_ms, self.fields))
