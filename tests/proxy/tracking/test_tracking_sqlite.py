"""SqliteTracking: the same answers as MemoryTracking, kept across a restart, written behind
in batches that reach another process, compare-and-set across processes, refused writes kept."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from support.clocks import FakeClock

from proxy.tracking.backend import REQUEST_IDS_KEPT, TrackingBackend
from proxy.tracking.memory import MemoryTracking
from proxy.tracking.records import DecisionRecord, Tracked
from proxy.tracking.sqlite_backend import SqliteTracking
from storage.embedded.database import Database

RETENTION = 1000.0
TTL = 100.0


def on_file(path: Path, clock: FakeClock, **kw: Any) -> SqliteTracking:
    busy = kw.pop("busy", 5000)
    options: dict[str, Any] = {"retention_s": RETENTION, "decision_ttl_s": TTL, **kw}
    return SqliteTracking(Database(path, busy_timeout_ms=busy), clock=clock, **options)


def record(request_id: str, workflow: str | None = "wf") -> DecisionRecord:
    return DecisionRecord(
        request_id, "planner", "code", ("m1", "m2"), "m1", workflow, 0.125, None, 1e-5, 0.9, 0.75
    )


def tracked(request_id: str, at: float, workflow: str | None = "wf", agent: str = "planner") -> Tracked:
    return Tracked(
        agent=agent, workflow=workflow, request_id=request_id, at=at,
        stats={"m1|calls": 1.0, "m1|lat_sum": 0.125},
        workflow_counts={"requests": 1.0, f"{agent}|m1|calls": 1.0} if workflow else {},
        decision=record(request_id, workflow=workflow),
    )


async def script(b: TrackingBackend, clock: FakeClock) -> None:
    await b.write_many([tracked("r1", 1000.0), tracked("r2", 1001.0, agent="coder")])
    await b.write(tracked("r3", 1002.0, workflow="other"))
    await b.write(tracked("r4", 1003.0, workflow=None))
    assert await b.finish("other", "success", 0.5, 1004.0)
    assert not await b.finish("absent", "success", None, 1004.0)
    assert await b.swap_applied("r2", 0.75, 0.25, 0.1) is True
    assert await b.swap_applied("r2", 0.75, 0.5, 0.2) is False
    assert await b.swap_applied("absent", 0.75, 0.5, 0.2) is None
    clock.now = 1000.0 + TTL + 0.5  # r1's record expired, r2's not
    await b.write(tracked("r5", 1000.0 + TTL + 0.5, workflow="wf"))


async def view(b: TrackingBackend) -> dict[str, Any]:
    return {
        "agents": await b.agents(),
        "stats": await b.stats(await b.agents()),
        "workflows": {wf: await b.workflow(wf) for wf in ("wf", "other", "absent")},
        "recent": [await b.recent_workflows(scope, 10) for scope in (None, "planner", "coder")],
        "decisions": {rid: await b.decision(rid) for rid in ("r1", "r2", "r3", "r4", "r5")},
    }


async def test_answers_as_memory_does_and_survives_a_restart(tmp_path: Path) -> None:
    clock = FakeClock(1000.0)
    memory = MemoryTracking(clock=clock, retention_s=RETENTION, decision_ttl_s=TTL)
    await script(memory, clock)
    expected = await view(memory)
    clock.now = 1000.0
    first = on_file(tmp_path / "s.db", clock)
    await script(first, clock)
    assert await view(first) == expected
    assert expected["decisions"]["r1"] is None and expected["decisions"]["r2"].applied == 0.25  # type: ignore[union-attr]
    await first.close()
    again = on_file(tmp_path / "s.db", clock)
    assert await view(again) == expected
    await again.close()


async def test_a_workflow_keeps_the_newest_request_ids_as_memory_does(tmp_path: Path) -> None:
    clock = FakeClock(1000.0)
    memory = MemoryTracking(clock=clock, retention_s=RETENTION, decision_ttl_s=TTL)
    sqlite = on_file(tmp_path / "s.db", clock)
    batches = [[tracked(f"r{i}", 1000.0) for i in range(start, start + 7)]
               for start in range(0, REQUEST_IDS_KEPT + 7, 7)]
    for backend in (memory, sqlite):
        for batch in batches:
            await backend.write_many(batch)
    kept = await memory.workflow("wf")
    assert kept is not None and len(kept.request_ids) == REQUEST_IDS_KEPT
    assert await sqlite.workflow("wf") == kept
    await sqlite.close()


async def test_expired_workflows_start_afresh_and_are_purged(tmp_path: Path) -> None:
    clock = FakeClock(0.0)
    b = on_file(tmp_path / "s.db", clock)
    await b.write(tracked("r1", 0.0, workflow="wf"))
    clock.now = RETENTION + 1.0
    assert await b.workflow("wf") is None
    await b.write(tracked("r2", clock.now, workflow="wf"))
    flow = await b.workflow("wf")
    assert flow is not None and flow.request_ids == ["r2"] and flow.counts["requests"] == 1.0
    clock.now = 2 * RETENTION + 10.0
    assert await b.flush()  # the purge drops every expired row
    with sqlite3.connect(tmp_path / "s.db") as conn:
        left = [conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("workflow", "workflow_count", "workflow_request", "recent", "decision")]
    assert left == [0, 0, 0, 0, 0]
    assert (await b.stats(["planner"]))["planner"]["m1|calls"] == 2.0  # counters never expire
    await b.close()


async def test_writes_behind_reach_another_process(tmp_path: Path) -> None:
    clock = FakeClock(0.0)
    writer = on_file(tmp_path / "s.db", clock, flush_interval_s=0.05)
    reader = on_file(tmp_path / "s.db", clock)
    await writer.start()
    await writer.write(tracked("r1", 0.0))
    assert writer.counters()["pending"] == 1
    for _ in range(200):
        if await reader.decision("r1") is not None:
            break
        await asyncio.sleep(0.01)
    assert await reader.decision("r1") == record("r1")
    assert writer.counters()["pending"] == 0
    await writer.close()
    await reader.close()


async def test_swap_applied_is_one_compare_and_set_across_processes(tmp_path: Path) -> None:
    clock = FakeClock(0.0)
    one, two = on_file(tmp_path / "s.db", clock), on_file(tmp_path / "s.db", clock)
    await one.write(tracked("r1", 0.0))
    assert await one.flush()
    swaps = [b.swap_applied("r1", 0.75, new, new) for b in (one, two) for new in (0.1, 0.2)]
    results = await asyncio.gather(*swaps)
    assert sorted(results, key=str) == [False, False, False, True]
    await one.close()
    await two.close()


async def test_a_refused_write_is_kept_for_the_next_one(tmp_path: Path) -> None:
    clock = FakeClock(0.0)
    b = on_file(tmp_path / "s.db", clock, busy=20)
    other = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    await b.write_many([tracked("r1", 0.0), tracked("r2", 0.0)])
    assert await b.flush() is False
    assert b.counters() == {"pending": 2, "write_errors": 1, "dropped_updates": 0}
    other.execute("COMMIT")
    other.close()
    assert await b.flush() is True
    assert (await b.stats(["planner"]))["planner"]["m1|calls"] == 2.0
    await b.close()
