"""SqliteTracking: the tracking backend on the embedded SQLite database, shared by the
processes of one machine (storage.embedded.database holds the schema).

Same semantics as MemoryTracking and RedisTracking: stats, workflow and per-minute (timeline)
counters are sums, workflows expire ``retention_s`` after their last write, decision records
``decision_ttl_s`` after theirs, minutes TIMELINE_RETENTION_S after they end; at most
REQUEST_IDS_KEPT request ids per workflow, RECENT_WORKFLOWS_KEPT workflows per recent index
and RECENT_DECISIONS_KEPT recent decisions per agent (proxy.tracking.timeline).

``write_many`` buffers; the buffer is written in one transaction every ``flush_interval_s``
(or at once when ``flush_outcomes`` are waiting), which also drops expired entries. Every
read, ``finish`` and ``swap_applied`` writes the buffer first, so this process reads its own
writes; other processes see them within ``flush_interval_s``. ``swap_applied`` is a
compare-and-set inside one write transaction: atomic across processes.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

import orjson

from proxy.tracking import timeline
from proxy.tracking.backend import (
    RECENT_WORKFLOWS_KEPT,
    REQUEST_IDS_KEPT,
    WorkflowRaw,
    parse_record,
    record_fields,
)
from proxy.tracking.memory_state import TrackingState
from proxy.tracking.records import Counts, DecisionRecord, Tracked
from storage.embedded.database import Database
from storage.errors import StoreUnavailable, WarnLimiter
from storage.periodic import Periodic

log = logging.getLogger("model_manager.tracking")

FLUSH_INTERVAL_S = 0.25
FLUSH_OUTCOMES = 512
"""Buffered outcomes that trigger a write before the next tick."""
PURGE_EVERY_S = 1.0
"""Expired entries are dropped by a write at most this often (reads ignore them anyway)."""
MAX_BUFFERED = 100_000
"""Outcomes kept while the database refuses writes; the oldest beyond are dropped and counted."""
ALL_AGENTS = "*"
"""The recent index of every agent (``*`` is not a valid agent name)."""

ADD_STAT = (
    "INSERT INTO stats (agent, name, value) VALUES (?, ?, ?) "
    "ON CONFLICT (agent, name) DO UPDATE SET value = value + excluded.value"
)
ADD_WORKFLOW = """
INSERT INTO workflow (id, expires, first_seen, last_seen) VALUES (:id, :expires, :at, :at)
ON CONFLICT (id) DO UPDATE SET
    expires = max(expires, excluded.expires),
    last_seen = CASE WHEN CAST(excluded.last_seen AS REAL) > CAST(last_seen AS REAL)
                THEN excluded.last_seen ELSE last_seen END
"""
ADD_WORKFLOW_COUNT = (
    "INSERT INTO workflow_count (workflow, name, value) VALUES (?, ?, ?) "
    "ON CONFLICT (workflow, name) DO UPDATE SET value = value + excluded.value"
)
ADD_REQUEST = "INSERT INTO workflow_request (workflow, request_id) VALUES (?, ?)"
TRIM_REQUESTS = """
DELETE FROM workflow_request WHERE workflow = :wf AND n <= (
    SELECT n FROM workflow_request WHERE workflow = :wf ORDER BY n DESC LIMIT 1 OFFSET :kept)
"""
TOUCH_RECENT = (
    "INSERT INTO recent (scope, workflow, at) VALUES (?, ?, ?) "
    "ON CONFLICT (scope, workflow) DO UPDATE SET at = max(at, excluded.at)"
)
TRIM_RECENT = """
DELETE FROM recent WHERE scope = :scope AND workflow NOT IN (
    SELECT workflow FROM recent WHERE scope = :scope ORDER BY at DESC LIMIT :kept)
"""
ADD_SERIES = (
    "INSERT INTO timeline (agent, minute, name, value) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (agent, minute, name) DO UPDATE SET value = value + excluded.value"
)
ADD_RECENT_DECISION = "INSERT INTO recent_decision (agent, entry) VALUES (?, ?)"
TRIM_RECENT_DECISIONS = """
DELETE FROM recent_decision WHERE agent = :agent AND n <= (
    SELECT n FROM recent_decision WHERE agent = :agent ORDER BY n DESC LIMIT 1 OFFSET :kept)
"""
PUT_DECISION = "INSERT OR REPLACE INTO decision (request_id, expires, fields) VALUES (?, ?, ?)"
EXPIRED_WORKFLOWS = "SELECT id FROM workflow WHERE expires <= ?"


class SqliteTracking:
    """TrackingBackend on ``database`` (the posterior store owns and closes it)."""

    def __init__(
        self,
        database: Database,
        *,
        clock: Callable[[], float],
        retention_s: float,
        decision_ttl_s: float,
        flush_interval_s: float = FLUSH_INTERVAL_S,
        flush_outcomes: int = FLUSH_OUTCOMES,
    ) -> None:
        self._db = database
        self._clock = clock
        self._retention = retention_s
        self._ttl = decision_ttl_s
        self._flush_outcomes = flush_outcomes
        self._pending: list[Tracked] = []
        self._flushing = asyncio.Lock()
        self._periodic = Periodic(flush_interval_s, self.flush, "sqlite-tracking-flush")
        self._warn = WarnLimiter()
        self.write_errors = 0
        self.dropped_updates = 0
        self._purged_at = float("-inf")

    async def start(self) -> None:
        """Start the write-behind task."""
        log.info("tracking: embedded SQLite %s", self._db.path)
        self._periodic.start()

    async def close(self) -> None:
        """Stop the task and write what is buffered (never raises)."""
        await self._periodic.stop()
        await self.flush()

    def counters(self) -> dict[str, int]:
        """pending (outcomes buffered), write_errors, dropped_updates."""
        return {
            "pending": len(self._pending),
            "write_errors": self.write_errors,
            "dropped_updates": self.dropped_updates,
        }

    async def write(self, tracked: Tracked) -> None:
        """Buffer one outcome (see TrackingBackend.write)."""
        await self.write_many([tracked])

    async def write_many(self, tracked: Sequence[Tracked]) -> None:
        """Buffer the outcomes; write now when enough are waiting."""
        self._pending.extend(tracked)
        if len(self._pending) >= self._flush_outcomes:
            await self.flush()

    async def flush(self) -> bool:
        """Write the buffer in one transaction (and drop expired entries); whether it was."""
        async with self._flushing:
            now = self._clock()
            purging = now - self._purged_at >= PURGE_EVERY_S
            if not self._pending and not purging:
                return True
            batch, self._pending = self._pending, []
            try:
                await self._db.write_async(lambda conn, _seq: self._write(conn, batch, now, purging))
            except sqlite3.Error as exc:
                self._keep(batch)
                self.write_errors += 1
                self._warn.warn("write", "could not write tracking to %s: %s", self._db.path, exc)
                return False
            if purging:
                self._purged_at = now
            return True

    def _write(self, conn: sqlite3.Connection, batch: list[Tracked], now: float, purging: bool) -> None:
        if purging:
            purge(conn, now)
        conn.executemany(ADD_STAT, summed((t.agent, t.stats) for t in batch))
        decisions = [
            (t.request_id, t.at + self._ttl, orjson.dumps(record_fields(t.decision)).decode())
            for t in batch if t.decision is not None
        ]
        conn.executemany(PUT_DECISION, decisions)
        write_timeline(conn, batch)
        flows = [t for t in batch if t.workflow is not None]
        if flows:
            self._write_workflows(conn, flows, now)

    def _write_workflows(self, conn: sqlite3.Connection, flows: list[Tracked], now: float) -> None:
        expired = [  # an expired workflow written again starts afresh
            row for wf in {t.workflow for t in flows}
            for row in conn.execute("SELECT id FROM workflow WHERE id = ? AND expires <= ?", (wf, now))
        ]
        drop_workflows(conn, expired)
        conn.executemany(ADD_WORKFLOW, [
            {"id": t.workflow, "expires": t.at + self._retention, "at": repr(t.at)} for t in flows
        ])
        conn.executemany(ADD_WORKFLOW_COUNT, summed((t.workflow, t.workflow_counts) for t in flows))
        conn.executemany(ADD_REQUEST, [(t.workflow, t.request_id) for t in flows])
        conn.executemany(TOUCH_RECENT, [
            (scope, t.workflow, t.at) for t in flows for scope in (t.agent, ALL_AGENTS)
        ])
        for wf in {t.workflow for t in flows}:
            conn.execute(TRIM_REQUESTS, {"wf": wf, "kept": REQUEST_IDS_KEPT})
        for scope in {t.agent for t in flows} | {ALL_AGENTS}:
            trim_recent(conn, scope)

    def _keep(self, batch: list[Tracked]) -> None:
        kept = batch + self._pending
        excess = len(kept) - MAX_BUFFERED
        if excess > 0:
            self.dropped_updates += excess
            del kept[:excess]
        self._pending = kept

    async def _read(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """``fn`` on a snapshot taken after this process's buffer is written."""
        await self.flush()
        try:
            return await self._db.read_async(fn)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"state database {self._db.path}: {exc}") from exc

    async def agents(self) -> list[str]:
        """Every agent with stats, sorted."""
        query = "SELECT DISTINCT agent FROM stats ORDER BY agent"
        rows = await self._read(lambda c: c.execute(query).fetchall())
        return [agent for (agent,) in rows]

    async def stats(self, agents: Sequence[str]) -> dict[str, dict[str, float]]:
        """The raw counters per agent."""
        wanted = list(agents)

        def read(conn: sqlite3.Connection) -> dict[str, dict[str, float]]:
            out: dict[str, dict[str, float]] = {agent: {} for agent in wanted}
            for agent in wanted:
                for name, value in conn.execute("SELECT name, value FROM stats WHERE agent = ?", (agent,)):
                    out[agent][name] = float(value)
            return out

        result: dict[str, dict[str, float]] = await self._read(read)
        return result

    async def timeline(self, agents: Sequence[str], since: float) -> dict[str, timeline.Series]:
        """The per-minute counters of ``agents`` from ``since`` on, oldest minute first."""
        wanted, first = list(agents), timeline.minute_of(since)
        found: dict[str, timeline.Series] = await self._read(lambda c: read_timeline(c, wanted, first))
        return found

    async def recent_decisions(self, agent: str, limit: int) -> list[dict[str, Any]]:
        """The agent's newest decisions, newest first (corrupt entries skipped)."""
        rows = await self._read(lambda c: c.execute(
            "SELECT entry FROM recent_decision WHERE agent = ? ORDER BY n DESC LIMIT ?", (agent, limit)
        ).fetchall())
        return [entry for (raw,) in rows if isinstance(entry := _json_object(raw), dict)]

    async def workflow(self, workflow_id: str) -> WorkflowRaw | None:
        """The live workflow, or None."""
        now = self._clock()
        found: WorkflowRaw | None = await self._read(lambda c: read_workflow(c, workflow_id, now))
        return found

    async def recent_workflows(self, agent: str | None, limit: int) -> list[tuple[str, float]]:
        """Live workflows of ``agent`` (or all), newest first."""
        scope = ALL_AGENTS if agent is None else agent
        now = self._clock()
        rows = await self._read(lambda c: c.execute(
            "SELECT r.workflow, r.at FROM recent r JOIN workflow w ON w.id = r.workflow "
            "WHERE r.scope = ? AND w.expires > ? ORDER BY r.at DESC, r.workflow LIMIT ?",
            (scope, now, limit),
        ).fetchall())
        return [(wf, float(at)) for wf, at in rows]

    async def finish(self, workflow_id: str, outcome: str, score: float | None, at: float) -> bool:
        """Mark finished (the retention clock restarts); False if unknown."""
        await self.flush()
        now = self._clock()
        scored = None if score is None else repr(score)
        params = (at + self._retention, repr(at), outcome, scored, workflow_id, now)

        def mark(conn: sqlite3.Connection, _seq: int) -> bool:
            cursor = conn.execute(
                "UPDATE workflow SET expires = ?, finished_at = ?, outcome = ?, score = coalesce(?, score) "
                "WHERE id = ? AND expires > ?", params,
            )
            return cursor.rowcount > 0

        marked: bool = await self._locked_write(mark)
        return marked

    async def decision(self, request_id: str) -> DecisionRecord | None:
        """The live decision record, or None."""
        now = self._clock()
        found: DecisionRecord | None = await self._read(lambda c: read_decision(c, request_id, now))
        return found

    async def swap_applied(self, request_id: str, expected: float, new: float, score: float) -> bool | None:
        """Compare-and-set of the applied reward, in one write transaction."""
        await self.flush()
        now = self._clock()

        def swap(conn: sqlite3.Connection, _seq: int) -> bool | None:
            record = read_decision(conn, request_id, now)
            if record is None:
                return None
            if record.applied != expected:
                return False
            fields = orjson.dumps(record_fields(replace(record, applied=new, score=score))).decode()
            conn.execute("UPDATE decision SET fields = ? WHERE request_id = ?", (fields, request_id))
            return True

        result: bool | None = await self._locked_write(swap)
        return result

    async def _locked_write(self, fn: Callable[[sqlite3.Connection, int], Any]) -> Any:
        try:
            return await self._db.write_async(fn)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"state database {self._db.path}: {exc}") from exc


def summed(counts: Iterable[tuple[str | None, Counts]]) -> list[tuple[str | None, str, float]]:
    """``(owner, name, amount)`` rows, one per owner and counter: a batch's increments added up."""
    total: dict[tuple[str | None, str], float] = {}
    for owner, increments in counts:
        for name, amount in increments.items():
            key = (owner, name)
            total[key] = total.get(key, 0.0) + amount
    return [(owner, name, amount) for (owner, name), amount in total.items()]


def purge(conn: sqlite3.Connection, now: float) -> None:
    """Drop expired decision records, workflows (with their counts, ids and index entries) and
    minutes older than TIMELINE_RETENTION_S."""
    conn.execute("DELETE FROM decision WHERE expires <= ?", (now,))
    conn.execute("DELETE FROM timeline WHERE minute < ?", (_oldest_minute(now),))
    drop_workflows(conn, conn.execute(EXPIRED_WORKFLOWS, (now,)).fetchall())


def write_timeline(conn: sqlite3.Connection, batch: Sequence[Tracked]) -> None:
    """A batch's per-minute increments (added up per cell) and recent-decision entries (in
    order; each agent's list trimmed to RECENT_DECISIONS_KEPT)."""
    series: dict[tuple[str, int, str], float] = {}
    for t in batch:
        for minute, counts in timeline.split_series(t.series).items():
            for name, amount in counts.items():
                key = (t.agent, minute, name)
                series[key] = series.get(key, 0.0) + amount
    conn.executemany(ADD_SERIES, [(*key, amount) for key, amount in series.items()])
    entries = [(t.agent, orjson.dumps(dict(t.recent)).decode()) for t in batch if t.recent is not None]
    conn.executemany(ADD_RECENT_DECISION, entries)
    for agent in {agent for agent, _ in entries}:
        conn.execute(TRIM_RECENT_DECISIONS, {"agent": agent, "kept": timeline.RECENT_DECISIONS_KEPT})


def read_timeline(conn: sqlite3.Connection, agents: Sequence[str], first: int) -> dict[str, timeline.Series]:
    """Each agent's minutes from ``first`` on (minute -> ``<model>|<metric>`` -> amount)."""
    out: dict[str, timeline.Series] = {}
    for agent in agents:
        series: timeline.Series = {}
        for minute, name, value in conn.execute(
            "SELECT minute, name, value FROM timeline WHERE agent = ? AND minute >= ? ORDER BY minute",
            (agent, first),
        ):
            series.setdefault(int(minute), {})[name] = float(value)
        out[agent] = series
    return out


def _oldest_minute(now: float) -> int:
    return timeline.minute_of(now - timeline.TIMELINE_RETENTION_S)


def _json_object(raw: object) -> object:
    try:
        return orjson.loads(raw) if isinstance(raw, str | bytes) else None
    except orjson.JSONDecodeError:
        return None


def drop_workflows(conn: sqlite3.Connection, gone: list[tuple[str]]) -> None:
    """Delete the workflows ``gone`` (one-tuples of ids) with their counts, ids and index entries."""
    if gone:
        conn.executemany("DELETE FROM workflow_count WHERE workflow = ?", gone)
        conn.executemany("DELETE FROM workflow_request WHERE workflow = ?", gone)
        conn.executemany("DELETE FROM recent WHERE workflow = ?", gone)
        conn.executemany("DELETE FROM workflow WHERE id = ?", gone)


def trim_recent(conn: sqlite3.Connection, scope: str) -> None:
    """Keep the RECENT_WORKFLOWS_KEPT newest entries of one recent index."""
    (count,) = conn.execute("SELECT count(*) FROM recent WHERE scope = ?", (scope,)).fetchone()
    if count > RECENT_WORKFLOWS_KEPT:
        conn.execute(TRIM_RECENT, {"scope": scope, "kept": RECENT_WORKFLOWS_KEPT})


def read_workflow(conn: sqlite3.Connection, workflow_id: str, now: float) -> WorkflowRaw | None:
    """The live workflow ``workflow_id`` in ``conn``, or None."""
    row = conn.execute(
        "SELECT first_seen, last_seen, finished_at, outcome, score FROM workflow "
        "WHERE id = ? AND expires > ?",
        (workflow_id, now),
    ).fetchone()
    if row is None:
        return None
    names = ("first_seen", "last_seen", "finished_at", "outcome", "score")
    meta = {name: str(value) for name, value in zip(names, row, strict=True) if value is not None}
    counts = {
        name: float(value)
        for name, value in conn.execute(
            "SELECT name, value FROM workflow_count WHERE workflow = ?", (workflow_id,)
        )
    }
    ids = [rid for (rid,) in conn.execute(
        "SELECT request_id FROM workflow_request WHERE workflow = ? ORDER BY n", (workflow_id,)
    )]
    return WorkflowRaw(meta, counts, ids)


def read_decision(conn: sqlite3.Connection, request_id: str, now: float) -> DecisionRecord | None:
    """The live decision record ``request_id`` in ``conn``; None when missing, expired or corrupt."""
    row = conn.execute(
        "SELECT fields FROM decision WHERE request_id = ? AND expires > ?", (request_id, now)
    ).fetchone()
    if row is None:
        return None
    try:
        fields = orjson.loads(row[0])
    except (orjson.JSONDecodeError, TypeError):
        return None
    return parse_record(request_id, fields) if isinstance(fields, dict) else None


def import_state(conn: sqlite3.Connection, state: TrackingState) -> int:
    """Add a tracking file's ``state`` (proxy.tracking.tracking_file) to ``conn``'s open
    transaction; how many stats agents, workflows and decisions were imported."""
    conn.executemany(ADD_STAT, [(a, k, v) for a, counts in state.stats.items() for k, v in counts.items()])
    for wf, entry in state.workflows.items():
        meta = entry.workflow.meta
        conn.execute(
            "INSERT OR REPLACE INTO workflow "
            "(id, expires, first_seen, last_seen, finished_at, outcome, score) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (wf, entry.expires, meta.get("first_seen", "0"), meta.get("last_seen", "0"),
             meta.get("finished_at"), meta.get("outcome"), meta.get("score")),
        )
        conn.executemany(ADD_WORKFLOW_COUNT, [(wf, k, v) for k, v in entry.workflow.counts.items()])
        conn.executemany(ADD_REQUEST, [(wf, rid) for rid in entry.workflow.request_ids])
    conn.executemany(TOUCH_RECENT, [
        (ALL_AGENTS if scope is None else scope, wf, at)
        for scope, recent in state.recent.items() for wf, at in recent.items()
    ])
    conn.executemany(PUT_DECISION, [
        (rid, expires, orjson.dumps(record_fields(record)).decode())
        for rid, (expires, record) in state.decisions.items()
    ])
    conn.executemany(ADD_SERIES, [
        (agent, minute, name, value)
        for agent, series in state.timeline.items()
        for minute, counts in series.items()
        for name, value in counts.items()
    ])
    conn.executemany(ADD_RECENT_DECISION, [  # oldest first: the newest gets the highest n
        (agent, orjson.dumps(entry).decode())
        for agent, entries in state.recent_decisions.items()
        for entry in reversed(entries)
    ])
    return len(state.stats) + len(state.workflows) + len(state.decisions)
