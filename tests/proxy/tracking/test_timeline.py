"""Per-minute buckets and recent decisions: what one outcome adds (pure), how the memory and
SQLite backends keep them (SQLite across a restart), and how Redis stores them (bounded keys
with a TTL, under the agent's hash tag, in the same pipelined write as the stats)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import redis
from support.clocks import FakeClock
from support.redis_server import RedisServer

from policies.base import Decision, DecisionRequest
from proxy.forwarding.base import FailureKind, Summary, Usage
from proxy.pipeline.learning import Scored
from proxy.pipeline.outcome import Attempt, Outcome, Status
from proxy.tracking import timeline
from proxy.tracking.memory import MemoryTracking
from proxy.tracking.records import Tracked, track
from proxy.tracking.redis_backend import RedisTracking
from proxy.tracking.sqlite_backend import SqliteTracking
from storage.embedded.database import Database
from storage.redis.store import RedisStore

START = 1_700_000_130.0  # minute 28_333_335, hour 472_222
MINUTE = int(START // 60)


def outcome(request_id: str = "mm-1", at: float = START) -> Outcome:
    return Outcome(
        request_id=request_id,
        decision_request=DecisionRequest("ag", "code", ("m1", "m2")),
        decision=Decision(("m1", "m2"), explored=True),
        snapshot={},
        workflow="wf",
        started_at=at,
        attempts=(Attempt("m1", FailureKind.TIMEOUT, 2.0), Attempt("m2", None, 0.3, 0.1)),
        status=Status.SUCCESS,
        summary=Summary(text="hi", usage=Usage(7, 3)),
    )


def stamped(done: Outcome) -> Tracked:
    scored = Scored(done, {"m1": 0.0, "m2": 0.9}, cost_usd=0.5, propensity=0.25, quality=0.8)
    return timeline.stamped(track(scored, done.started_at), scored)


def test_an_outcome_adds_its_charted_counters_to_its_minute() -> None:
    tracked = stamped(outcome())
    assert tracked.series == {
        f"{MINUTE}|m1|decisions": 1, f"{MINUTE}|m1|calls": 1, f"{MINUTE}|m1|failures": 1,
        f"{MINUTE}|m1|fail.timeout": 1, f"{MINUTE}|m2|calls": 1, f"{MINUTE}|m2|fallbacks": 1,
        f"{MINUTE}|m2|successes": 1, f"{MINUTE}|m2|tokens_in": 7, f"{MINUTE}|m2|tokens_out": 3,
        f"{MINUTE}|m2|cost": 0.5, f"{MINUTE}|m1|ctx.code": 1,
    }
    assert tracked.recent is not None
    assert tracked.recent["attempts"] == [["m1", "timeout"], ["m2", ""]]
    recent = tracked.recent
    assert (recent["propensity"], recent["explored"], recent["reward"]) == (0.25, True, 0.9)


def test_memory_keeps_minutes_for_the_retention() -> None:
    clock = FakeClock(START)
    backend = MemoryTracking(clock=clock, retention_s=1e6, decision_ttl_s=1e6)
    asyncio.run(backend.write_many([stamped(outcome("mm-1")), stamped(outcome("mm-2", START + 60))]))
    series = asyncio.run(backend.timeline(["ag"], START))["ag"]
    assert sorted(series) == [MINUTE, MINUTE + 1] and series[MINUTE]["m2|cost"] == 0.5
    assert asyncio.run(backend.timeline(["ag"], START + 60))["ag"].keys() == {MINUTE + 1}
    assert [e["id"] for e in asyncio.run(backend.recent_decisions("ag", 10))] == ["mm-2", "mm-1"]
    clock.now = START + timeline.TIMELINE_RETENTION_S + 121
    asyncio.run(backend.write(stamped(outcome("mm-3", clock.now))))
    assert MINUTE not in asyncio.run(backend.timeline(["ag"], 0.0))["ag"]


def test_sqlite_keeps_minutes_across_a_restart_for_the_retention(tmp_path: Path) -> None:
    """What one SqliteTracking wrote, a new one on the same file reads back; minutes past the
    retention are purged by the next write."""
    clock = FakeClock(START)
    path = tmp_path / "state.db"

    async def run() -> None:
        backend = SqliteTracking(Database(path), clock=clock, retention_s=1e6, decision_ttl_s=1e6)
        await backend.write_many([stamped(outcome("mm-1")), stamped(outcome("mm-2", START + 60))])
        series = (await backend.timeline(["ag", "nobody"], START))
        assert sorted(series["ag"]) == [MINUTE, MINUTE + 1] and series["ag"][MINUTE]["m2|cost"] == 0.5
        assert series["nobody"] == {}
        assert (await backend.timeline(["ag"], START + 60))["ag"].keys() == {MINUTE + 1}
        assert [e["id"] for e in await backend.recent_decisions("ag", 10)] == ["mm-2", "mm-1"]
        await backend.close()
        memory = MemoryTracking(clock=clock, retention_s=1e6, decision_ttl_s=1e6)
        await memory.write_many([stamped(outcome("mm-1")), stamped(outcome("mm-2", START + 60))])

        restored = SqliteTracking(Database(path), clock=clock, retention_s=1e6, decision_ttl_s=1e6)
        assert await restored.timeline(["ag"], 0.0) == await memory.timeline(["ag"], 0.0)
        assert await restored.recent_decisions("ag", 10) == await memory.recent_decisions("ag", 10)
        clock.now = START + timeline.TIMELINE_RETENTION_S + 121
        await restored.write(stamped(outcome("mm-3", clock.now)))
        assert MINUTE not in (await restored.timeline(["ag"], 0.0))["ag"]
        assert [e["id"] for e in await restored.recent_decisions("ag", 2)] == ["mm-3", "mm-2"]
        await restored.close()

    asyncio.run(run())


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_the_newest_decisions_are_kept(tmp_path: Path, kind: str) -> None:
    async def run() -> list[dict[str, Any]]:
        backend: MemoryTracking | SqliteTracking
        if kind == "memory":
            backend = MemoryTracking(clock=FakeClock(START), retention_s=1e6, decision_ttl_s=1e6)
        else:
            backend = SqliteTracking(Database(tmp_path / "s.db"), clock=FakeClock(START),
                                     retention_s=1e6, decision_ttl_s=1e6)
        await backend.write_many([stamped(outcome(f"mm-{i}")) for i in range(kept - 3)])
        await backend.write_many([stamped(outcome(f"mm-{i}")) for i in range(kept - 3, kept + 5)])
        entries = await backend.recent_decisions("ag", 1000)
        await backend.close()
        return entries

    kept = timeline.RECENT_DECISIONS_KEPT
    entries = asyncio.run(run())
    assert len(entries) == kept and entries[0]["id"] == f"mm-{kept + 4}" and entries[-1]["id"] == "mm-5"


@pytest.mark.parametrize("hours", [1, 2])
def test_redis_buckets_are_tagged_bounded_and_expire(redis_server: RedisServer, hours: int) -> None:
    async def run() -> tuple[dict[int, dict[str, float]], list[str]]:
        store = RedisStore.from_url(redis_server.url, clock=lambda: START + 3600 * hours)
        tracking = RedisTracking(
            store.client, prefix="mm", clock=lambda: START + 3600 * hours, retention_s=1e6, decision_ttl_s=1e6
        )
        await tracking.write_many([stamped(outcome("mm-1")), stamped(outcome("mm-2", START + 3600 * hours))])
        series = (await tracking.timeline(["ag"], START))["ag"]
        ids = [e["id"] for e in await tracking.recent_decisions("ag", 10)]
        await tracking.close()
        await store.close()
        return series, ids

    series, ids = asyncio.run(run())
    assert sorted(series) == [MINUTE, MINUTE + 60 * hours]
    assert series[MINUTE]["m1|ctx.code"] == 1 and ids == ["mm-2", "mm-1"]
    with redis.Redis.from_url(redis_server.url) as client:
        keys = sorted(k.decode() for k in client.keys("mm:{ag}:*"))
        assert keys == sorted(["mm:{ag}:stats", "mm:{ag}:wfs", "mm:{ag}:decisions",
                               f"mm:{{ag}}:tl:{MINUTE // 60}", f"mm:{{ag}}:tl:{MINUTE // 60 + hours}"])
        for key in [k for k in keys if ":tl:" in k or k.endswith(":decisions")]:
            ttl_s = client.pttl(key) / 1000
            assert timeline.TIMELINE_RETENTION_S < ttl_s <= timeline.TIMELINE_RETENTION_S + 3600
        assert client.llen("mm:{ag}:decisions") == 2
