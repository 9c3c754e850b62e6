"""RedisTracking: stats, workflows and decision records in Redis, shared by every replica.

Keys (scope and workflow ids percent-encoded like posterior scopes, see storage.redis.keys)::

    {prefix}:{<agent>}:stats       hash  <model>|<metric> -> number (HINCRBYFLOAT)
    {prefix}:stats:agents          set   agents with stats
    {prefix}:wf:{<workflow>}       hash  first_seen, last_seen, finished_at, outcome, score,
                                         requests, status.<s>, <agent>|<model>|<metric>
    {prefix}:wf:{<workflow>}:reqs  list  request ids, newest REQUEST_IDS_KEPT
    {prefix}:{<agent>}:wfs         zset  workflow -> last seen (RECENT_WORKFLOWS_KEPT newest)
    {prefix}:wfs                   zset  the same over every agent
    {prefix}:req:<request_id>      hash  decision record (TTL decision_ttl_s)
    {prefix}:{<agent>}:tl:<hour>   hash  <minute>|<model>|<metric> -> number, per-minute counters
                                         of one epoch hour (TTL TIMELINE_RETENTION_S + 1 h)
    {prefix}:{<agent>}:decisions   list  the newest RECENT_DECISIONS_KEPT decision entries (JSON)

Workflow keys expire ``retention_s`` after their last write (PEXPIRE on every write).
``write`` is one pipelined round trip of 2-5 EVALSHA commands, one small script per hash
tag (the agent's tag has two): the agent's stats + its recent-workflows entry; its
per-minute counters + recent-decisions entry; the workflow; the global recent index;
the decision record (plus the agents-set SADD at most once a minute per agent and process).
Writes go through a TrackingWriter (proxy.tracking.redis_writer): every script call carries
the writer's id and sequence number (storage.redis.sequence), so each is applied exactly once
even when a reply is lost and the call resent; during an outage calls are buffered
(bounded, oldest dropped and counted in ``dropped_updates``) and resent by the retry task
``start()`` runs. ``close`` flushes.
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

    ``buffer_limit``, ``retry_interval_s`` and ``seq_ttl_s`` configure its TrackingWriter.
    """

    def __init__(
        self,
        client: Client,
        *,
        prefix: str,
        clock: Callable[[], float],
        retention_s: float,
        decision_ttl_s: float,
        buffer_limit: int = 10_000,
        retry_interval_s: float = 1.0,
        seq_ttl_s: float = SEQ_TTL_S,
    ) -> None:
        self._client = client
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
        """Unacknowledged and dropped script calls."""
        return {"pending": self.pending, "dropped_updates": self.dropped_updates}

    async def start(self) -> None:
        """Start the writer's retry task."""
        await self.writer.start()

    # -- keys ------------------------------------------------------------------------
    def stats_key(self, agent: str) -> str:
        return f"{self._prefix}:{{{encode_scope(agent)}}}:stats"

    def workflow_key(self, workflow: str) -> str:
        return f"{self._prefix}:wf:{{{encode_scope(workflow)}}}"

    def recent_key(self, agent: str | None) -> str:
        if agent is None:
            return f"{self._prefix}:wfs"
        return f"{self._prefix}:{{{encode_scope(agent)}}}:wfs"

    def request_key(self, request_id: str) -> str:
        return f"{self._prefix}:req:{encode_scope(request_id)}"

    def timeline_key(self, agent: str, hour: int) -> str:
        return f"{self._prefix}:{{{encode_scope(agent)}}}:tl:{hour}"

    def decisions_key(self, agent: str) -> str:
        return f"{self._prefix}:{{{encode_scope(agent)}}}:decisions"

    # -- writes ----------------------------------------------------------------------
    async def write(self, tracked: Tracked) -> None:
        """One outcome's script calls, exactly once; never raises (see TrackingWriter)."""
        await self.writer.write(self._commands(tracked))

    async def write_many(self, tracked: Sequence[Tracked]) -> None:
        """Every outcome's calls, in order, in one pipelined round trip; never raises."""
        await self.writer.write([call for item in tracked for call in self._commands(item)])

    def _commands(self, tracked: Tracked) -> list[lua.Call]:
        calls = [self._agent_command(tracked), *self._timeline_commands(tracked)]
        if self._registry_due(tracked.agent):
            calls.append(lua.Call(lua.SADD, (f"{self._prefix}:stats:agents",), (tracked.agent,)))
        if tracked.workflow is not None:
            calls.extend(self._workflow_commands(tracked, tracked.workflow))
        if tracked.decision is not None:
            fields = orjson.dumps(record_fields(tracked.decision))
            calls.append(lua.Call(lua.PUT, (self.request_key(tracked.request_id),), (self._ttl_ms, fields)))
        return calls

    def _workflow_commands(self, tracked: Tracked, workflow: str) -> list[lua.Call]:
        key = self.workflow_key(workflow)
        at = repr(tracked.at)
        args = (self._retention_ms, at, tracked.request_id, REQUEST_IDS_KEPT, _json(tracked.workflow_counts))
        recent = (self._retention_ms, at, workflow, self._cutoff(tracked), RECENT_WORKFLOWS_KEPT)
        return [
            lua.Call(lua.WORKFLOW, (key, key + ":reqs"), args),
            lua.Call(lua.RECENT, (self.recent_key(None),), recent),
        ]

    def _agent_command(self, tracked: Tracked) -> lua.Call:
        """Stats counters and (with a workflow) the agent's recent-workflows entry."""
        keys = (self.stats_key(tracked.agent), self.recent_key(tracked.agent))
        args = (
            _json(tracked.stats),
            tracked.workflow or "",
            repr(tracked.at),
            self._cutoff(tracked),
            RECENT_WORKFLOWS_KEPT,
            self._retention_ms,
        )
        return lua.Call(lua.AGENT, keys, args)

    def _timeline_commands(self, tracked: Tracked) -> list[lua.Call]:
        """Per-minute counters (one call per epoch hour touched, usually one) and, with the
        first, the recent-decisions entry."""
        by_hour: dict[int, Counts] = {}
        for name, amount in tracked.series.items():
            by_hour.setdefault(int(name.partition(SEP)[0]) // 60, {})[name] = amount
        entry = b"" if tracked.recent is None else orjson.dumps(tracked.recent)
        calls = []
        for hour, counts in sorted(by_hour.items()):
            keys = (self.timeline_key(tracked.agent, hour), self.decisions_key(tracked.agent))
            calls.append(lua.Call(lua.TIMELINE, keys, (_json(counts), TIMELINE_TTL_MS, entry, RECENT_KEPT)))
            entry = b""
        return calls

    def _cutoff(self, tracked: Tracked) -> str:
        return repr(tracked.at - self._retention_s)

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
        """Every agent with stats, sorted."""
        members = await self._client.smembers(f"{self._prefix}:stats:agents")
        return sorted(_text(m) for m in members)

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


def _json(counts: Counts) -> bytes:
    """Counters as a JSON object of exact decimal strings."""
    return orjson.dumps({name: repr(amount) for name, amount in counts.items()})


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
