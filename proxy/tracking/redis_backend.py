"""RedisTracking: stats, workflows and decision records in Redis, shared by every replica.

Keys (scope and workflow ids percent-encoded like posterior scopes, see storage.redis.keys)::

    {prefix}:{<agent>}:stats       hash  <model>|<metric> -> number (HINCRBYFLOAT; TTL agent_ttl_s)
    {prefix}:stats:agents          set   agents with stats (TTL agent_ttl_s, refreshed on use)
    {prefix}:wf:{<workflow>}       hash  first_seen, last_seen, finished_at, outcome, score,
                                         requests, status.<s>, <agent>|<model>|<metric>
    {prefix}:wf:{<workflow>}:reqs  list  request ids, newest REQUEST_IDS_KEPT
    {prefix}:{<agent>}:wfs         zset  workflow -> last seen (RECENT_WORKFLOWS_KEPT newest)
    {prefix}:wfs                   zset  the same over every agent
    {prefix}:req:<request_id>      hash  decision record (TTL decision_ttl_s)
    {prefix}:{<agent>}:tl:<hour>   hash  <minute>|<model>|<metric> -> number, per-minute counters
                                         of one epoch hour (TTL TIMELINE_RETENTION_S + 1 h)
    {prefix}:{<agent>}:decisions   list  the newest RECENT_DECISIONS_KEPT decision entries (JSON)

Workflow keys expire ``retention_s`` after their last write (PEXPIRE on every write); with
``agent_ttl_s`` an agent's stats hash and the agents set expire that long after the last
write (``agents()`` drops members whose stats expired).
An outcome becomes entries (proxy.tracking.redis_pending), each one script call on one hash
tag: the agent's (its stats, per-minute counters, recent-decisions and recent-workflows
entries), the workflow's (counts and request id), the global recent index, the
decision record (plus the agents-set entry at most once a minute per agent and process, and
whenever the agent's call created its stats hash: a new agent, or Redis lost its data).
Without a workflow that is 2 calls per outcome, with one 4.
Entries wait in a TrackingWriter (proxy.tracking.redis_writer) coalesced per key, and are
written in one pipelined round trip; every call carries the writer's id and sequence number
(storage.redis.sequence), so each is applied exactly once even when a reply is lost and the
call resent. During an outage sums take one entry per key (up to ``buffer_limit`` keys);
per-request parts (decision records, recent-decision entries, request ids) up to
``buffer_bytes`` (oldest dropped, counted in ``overflowed_records`` and ``dropped_updates``;
an entry's sums are kept). The retry task ``start()`` runs resends them. ``close`` flushes.

Reads and ``finish``/``swap_applied`` go straight to Redis and raise when it is down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

import orjson

from proxy.tracking import lua, timeline
from proxy.tracking.backend import (
    META_FIELDS,
    RECENT_WORKFLOWS_KEPT,
    REQUEST_IDS_KEPT,
    WorkflowRaw,
    parse_record,
    record_fields,
)
from proxy.tracking.records import SEP, Counts, DecisionRecord, Tracked
from proxy.tracking.redis_pending import Agent, Entry, Latest, Members, Record, Workflow
from proxy.tracking.redis_writer import TrackingWriter
from storage.redis.client import Client
from storage.redis.keys import encode_scope
from storage.redis.sequence import SEQ_TTL_S

log = logging.getLogger("model_manager.tracking")
REGISTRY_REFRESH_S = 60.0
REGISTRY_CACHE_LIMIT = 10_000
TIMELINE_TTL_MS = (timeline.TIMELINE_RETENTION_S + 3600) * 1000
"""An hour key lives the retention past its last write (and so past its last minute)."""
RECENT_KEPT = timeline.RECENT_DECISIONS_KEPT


class RedisTracking:
    """TrackingBackend on a redis-py asyncio client (the store's; not closed here).

    ``agent_ttl_s``: an agent's stats hash and the agents set expire that long after their
    last write (None: never). ``buffer_limit``, ``buffer_bytes``, ``retry_interval_s`` and
    ``seq_ttl_s`` configure its TrackingWriter.
    """

    def __init__(
        self,
        client: Client,
        *,
        prefix: str,
        clock: Callable[[], float],
        retention_s: float,
        decision_ttl_s: float,
        agent_ttl_s: float | None = None,
        buffer_limit: int = 100_000,
        buffer_bytes: int = 64 * 1024 * 1024,
        retry_interval_s: float = 1.0,
        seq_ttl_s: float = SEQ_TTL_S,
    ) -> None:
        self._client = client
        self._agent_ttl_ms = int(agent_ttl_s * 1000) if agent_ttl_s else 0
        self._prefix = prefix
        self._clock = clock
        self._retention_ms = max(int(retention_s * 1000), 1)
        self._retention_s = retention_s
        self._ttl_ms = max(int(decision_ttl_s * 1000), 1)
        self._swap = client.register_script(lua.SWAP_APPLIED.text)
        self._registered: dict[str, float] = {}
        self.writer = TrackingWriter(
            client,
            buffer_limit=buffer_limit,
            buffer_bytes=buffer_bytes,
            retry_interval_s=retry_interval_s,
            prefix=prefix,
            seq_ttl_s=seq_ttl_s,
        )

    @property
    def dropped_updates(self) -> int:
        """Script calls dropped unwritten (buffer full, or in doubt past the seq TTL)."""
        return self.writer.dropped_updates

    @property
    def pending(self) -> int:
        """Script calls not yet acknowledged by Redis."""
        return self.writer.pending

    def counters(self) -> dict[str, int]:
        """Buffered entries, dropped updates, and the per-request records' byte buffer."""
        writer = self.writer
        return {
            "pending": self.pending,
            "dropped_updates": self.dropped_updates,
            "record_bytes": writer.record_bytes,
            "record_bytes_limit": writer.record_bytes_limit,
            "overflowed_records": writer.overflowed_records,
        }

    async def start(self) -> None:
        """Start the writer's retry task."""
        await self.writer.start()

    # -- keys ------------------------------------------------------------------------
    @property
    def agents_key(self) -> str:
        return f"{self._prefix}:stats:agents"

    def agent_tag(self, agent: str) -> str:
        """The start of every key of ``agent``'s (its hash tag)."""
        return f"{self._prefix}:{{{encode_scope(agent)}}}:"

    def stats_key(self, agent: str) -> str:
        return self.agent_tag(agent) + "stats"

    def workflow_key(self, workflow: str) -> str:
        return f"{self._prefix}:wf:{{{encode_scope(workflow)}}}"

    def recent_key(self, agent: str | None) -> str:
        if agent is None:
            return f"{self._prefix}:wfs"
        return self.agent_tag(agent) + "wfs"

    def request_key(self, request_id: str) -> str:
        return f"{self._prefix}:req:{encode_scope(request_id)}"

    def timeline_key(self, agent: str, hour: int) -> str:
        return self.agent_tag(agent) + _hour(hour)

    def decisions_key(self, agent: str) -> str:
        return self.agent_tag(agent) + "decisions"

    # -- writes ----------------------------------------------------------------------
    async def write(self, tracked: Tracked) -> None:
        """One outcome's script calls, exactly once; never raises (see TrackingWriter)."""
        await self.writer.write(self._commands(tracked))

    async def write_many(self, tracked: Sequence[Tracked]) -> None:
        """Every outcome's calls, in order, in one pipelined round trip; never raises."""
        await self.writer.write([call for item in tracked for call in self._commands(item)])

    def _commands(self, tracked: Tracked) -> list[Entry]:
        agent = tracked.agent
        entries: list[Entry] = [self._agent_entry(tracked)]
        if self._registry_due(agent):
            entries.append(self._members([agent]))
        if tracked.workflow is not None:
            entries.extend(self._workflow_entries(tracked, tracked.workflow))
        if tracked.decision is not None:
            fields = orjson.dumps(record_fields(tracked.decision))
            entries.append(Record(self.request_key(tracked.request_id), fields, self._ttl_ms))
        return entries

    def _members(self, agents: Sequence[str]) -> Members:
        return Members(self.agents_key, set(agents), self._agent_ttl_ms)

    def _workflow_entries(self, tracked: Tracked, workflow: str) -> list[Entry]:
        key, at, ttl = self.workflow_key(workflow), tracked.at, self._retention_ms
        counts, ids = dict(tracked.workflow_counts), [tracked.request_id]
        return [
            Workflow(key, at, at, counts, ids, ttl, REQUEST_IDS_KEPT),
            Latest(self.recent_key(None), {workflow: at}, ttl, self._retention_s, RECENT_WORKFLOWS_KEPT),
        ]

    def _agent_entry(self, tracked: Tracked) -> Agent:
        """The agent's stats, its per-minute counters (per epoch hour touched, usually one),
        its recent-decisions entry and its recent-workflows entry."""
        agent = tracked.agent
        tag = self.agent_tag(agent)  # the keys below as stats_key(agent) etc., encoded once
        by_hour: dict[int, Counts] = {}
        for name, amount in tracked.series.items():
            by_hour.setdefault(int(name.partition(SEP)[0]) // 60, {})[name] = amount
        hours = {tag + _hour(hour): counts for hour, counts in by_hour.items()}
        decisions = [orjson.dumps(tracked.recent)] if tracked.recent is not None else []
        seen = {} if tracked.workflow is None else {tracked.workflow: tracked.at}
        ttl, retention = self._retention_ms, self._retention_s
        workflows = Latest(tag + "wfs", seen, ttl, retention, RECENT_WORKFLOWS_KEPT)
        return Agent(
            tag + "stats", tag + "decisions", dict(tracked.stats), hours, decisions,
            self._agent_ttl_ms, TIMELINE_TTL_MS, RECENT_KEPT, workflows, self._members([agent]),
        )  # fmt: skip

    def _registry_due(self, agent: str) -> bool:
        """Whether to (re)add ``agent`` to the agents set: once per REGISTRY_REFRESH_S per
        agent and process, so a lost set heals within that time."""
        now = time.monotonic()
        if now - self._registered.get(agent, -REGISTRY_REFRESH_S) < REGISTRY_REFRESH_S:
            return False
        if len(self._registered) >= REGISTRY_CACHE_LIMIT:
            self._registered.clear()
        self._registered[agent] = now
        return True

    async def finish(self, workflow_id: str, outcome: str, score: float | None, at: float) -> bool:
        """Mark finished and refresh the retention; False if unknown or expired."""
        key = self.workflow_key(workflow_id)
        fields = ["finished_at", repr(at), "outcome", outcome]
        fields += ["score", repr(score)] if score is not None else []
        done = await self._client.eval(lua.FINISH.text, 2, key, key + ":reqs", self._retention_ms, *fields)
        return bool(done)

    async def swap_applied(self, request_id: str, expected: float, new: float, score: float) -> bool | None:
        """Compare-and-set of ``applied`` in one script (atomic on the server)."""
        args = [repr(expected), repr(new), repr(score)]
        result = await self._swap(keys=[self.request_key(request_id)], args=args)
        return None if int(result) < 0 else bool(int(result))

    # -- reads -----------------------------------------------------------------------
    async def agents(self) -> list[str]:
        """Every agent with stats, sorted; members whose stats hash expired are removed."""
        members = sorted(_text(m) for m in await self._client.smembers(self.agents_key))
        async with self._client.pipeline(transaction=False) as pipe:
            for agent in members:
                pipe.exists(self.stats_key(agent))
            found = await pipe.execute()
        gone = [agent for agent, exists in zip(members, found, strict=True) if not exists]
        if gone:
            await self._client.srem(self.agents_key, *gone)
        return [agent for agent, exists in zip(members, found, strict=True) if exists]

    async def stats(self, agents: Sequence[str]) -> dict[str, dict[str, float]]:
        """Raw counters per agent in one pipelined round trip."""
        async with self._client.pipeline(transaction=False) as pipe:
            for agent in agents:
                pipe.hgetall(self.stats_key(agent))
            replies = await pipe.execute()
        return {agent: _numbers(reply) for agent, reply in zip(agents, replies, strict=True)}

    async def timeline(self, agents: Sequence[str], since: float) -> dict[str, timeline.Series]:
        """Every agent's hours from ``since`` on, in one pipelined round trip."""
        first = timeline.minute_of(since)
        hours = range(first // 60, timeline.minute_of(self._clock()) // 60 + 1)
        async with self._client.pipeline(transaction=False) as pipe:
            for agent in agents:
                for hour in hours:
                    pipe.hgetall(self.timeline_key(agent, hour))
            replies = iter(await pipe.execute())
        out: dict[str, timeline.Series] = {}
        for agent in agents:
            fields = {name: value for _ in hours for name, value in _numbers(next(replies)).items()}
            out[agent] = {m: c for m, c in sorted(timeline.split_series(fields).items()) if m >= first}
        return out

    async def recent_decisions(self, agent: str, limit: int) -> list[dict[str, Any]]:
        """The newest entries of the agent's list (corrupt ones skipped)."""
        rows = await self._client.lrange(self.decisions_key(agent), 0, max(limit, 1) - 1)
        return [entry for entry in (_entry(row) for row in rows) if entry is not None]

    async def workflow(self, workflow_id: str) -> WorkflowRaw | None:
        """The workflow hash and its request ids, or None."""
        key = self.workflow_key(workflow_id)
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.hgetall(key)
            pipe.lrange(key + ":reqs", 0, -1)
            fields, ids = await pipe.execute()
        if not fields:
            return None
        decoded = {_text(k): _text(v) for k, v in fields.items()}
        meta = {k: v for k, v in decoded.items() if k in META_FIELDS}
        counts = _numbers({k: v for k, v in decoded.items() if k not in META_FIELDS})
        return WorkflowRaw(meta, counts, [_text(i) for i in ids])

    async def recent_workflows(self, agent: str | None, limit: int) -> list[tuple[str, float]]:
        """Newest first, only those seen within the retention."""
        cutoff = self._clock() - self._retention_s
        rows = await self._client.zrevrangebyscore(
            self.recent_key(agent), "+inf", f"({cutoff!r}", start=0, num=limit, withscores=True
        )
        pairs = cast(list[tuple[bytes, float]], rows)
        return [(_text(member), float(score)) for member, score in pairs]

    async def decision(self, request_id: str) -> DecisionRecord | None:
        """The decision record, or None (unknown, expired or corrupt)."""
        fields = await self._client.hgetall(self.request_key(request_id))
        if not fields:
            return None
        return parse_record(request_id, {_text(k): _text(v) for k, v in fields.items()})

    async def close(self) -> None:
        """Stop the retry task and flush best-effort; the client belongs to the store."""
        await self.writer.close()


def _hour(hour: int) -> str:
    """An agent's timeline key for epoch ``hour``, after its tag."""
    return f"tl:{hour}"


def _entry(row: bytes | str) -> dict[str, Any] | None:
    try:
        entry = orjson.loads(row)
    except orjson.JSONDecodeError:
        return None
    return entry if isinstance(entry, dict) else None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _numbers(fields: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in fields.items():
        try:
            out[_text(name)] = float(value)
        except (TypeError, ValueError):
            log.warning("corrupt tracking counter %r = %r; ignored", name, value)
    return out
