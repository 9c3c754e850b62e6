"""How many script calls RedisTracking sends per outcome, and what the merged calls keep
through an outage: every count, the newest recent decisions in order, and, past the byte
bound, the sums without the dropped per-request parts (real redis-server)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis
import redis.asyncio
from support.redis_server import RedisServer

from policies.base import Decision, DecisionRequest
from proxy.forwarding.base import FailureKind, Summary, Usage
from proxy.pipeline.learning import Scored
from proxy.pipeline.outcome import Attempt, Outcome, Status
from proxy.tracking import timeline
from proxy.tracking.records import Tracked, track
from proxy.tracking.redis_backend import RedisTracking
from storage.redis.client import connect

START = 1_700_000_130.0
KEPT = timeline.RECENT_DECISIONS_KEPT
Make = Callable[..., RedisTracking]


def stamped(i: int, workflow: str | None) -> Tracked:
    """Outcome ``i`` of agent "ag" a second after the previous one, as the tracker writes it
    (stats, per-minute counters, recent-decisions entry, decision record)."""
    done = Outcome(
        request_id=f"mm-{i}",
        decision_request=DecisionRequest("ag", "code", ("m1", "m2")),
        decision=Decision(("m1", "m2"), explored=False),
        snapshot={},
        workflow=workflow,
        started_at=START + i,
        attempts=(Attempt("m1", FailureKind.TIMEOUT, 2.0), Attempt("m2", None, 0.3, 0.1)),
        status=Status.SUCCESS,
        summary=Summary(text="hi", usage=Usage(7, 3)),
    )
    scored = Scored(done, {"m1": 0.0, "m2": 0.9}, cost_usd=0.5, propensity=0.25, quality=0.8)
    return timeline.stamped(track(scored, done.started_at), scored)


@pytest.fixture
async def make() -> AsyncIterator[Make]:
    clients: list[redis.asyncio.Redis] = []

    def build(url: str, **kw: Any) -> RedisTracking:
        clients.append(connect(url, cluster=False, socket_timeout=0.3, connect_timeout=0.3))
        options = {"retry_interval_s": 60.0, "retention_s": 1e6, "decision_ttl_s": 1e6, **kw}
        return RedisTracking(clients[-1], prefix="mm", clock=lambda: START + 3600, **options)

    yield build
    for client in clients:
        await client.aclose()


def script_calls(url: str) -> dict[str, int]:
    """Calls per script command (EVALSHA, EVAL, SCRIPT) served so far."""
    with redis.Redis.from_url(url) as direct:
        info = direct.info("commandstats")
    names = ("cmdstat_evalsha", "cmdstat_eval", "cmdstat_script")
    return {name: int(info[name]["calls"]) if name in info else 0 for name in names}


@pytest.mark.parametrize(("workflow", "per_outcome"), [(None, 2), ("wf", 4)])
async def test_script_calls_per_sequential_outcome(
    make: Make, own_redis_server: RedisServer, workflow: str | None, per_outcome: int
) -> None:
    """Without a workflow: the agent's call (stats, timeline, recent decisions) and the
    decision record; with one also the global recent-workflows index and the workflow's call
    (the agent's recent workflows go in the agent's call)."""
    tracking = make(own_redis_server.url)
    await tracking.write(stamped(0, workflow))  # scripts loaded, agent registered
    before = script_calls(own_redis_server.url)
    n = 20
    for i in range(1, n + 1):
        await tracking.write(stamped(i, workflow))
        assert tracking.pending == 0
    after = script_calls(own_redis_server.url)
    assert {name: after[name] - before[name] for name in after} == {
        "cmdstat_evalsha": per_outcome * n, "cmdstat_eval": 0, "cmdstat_script": 0,
    }  # fmt: skip
    stats = (await tracking.stats(["ag"]))["ag"]
    assert stats["m2|successes"] == n + 1 and stats["m1|fail.timeout"] == n + 1
    series = (await tracking.timeline(["ag"], START))["ag"]
    assert sum(bucket.get("m2|calls", 0.0) for bucket in series.values()) == n + 1
    recent = await tracking.recent_decisions("ag", 100)
    assert [e["id"] for e in recent] == [f"mm-{i}" for i in range(n, -1, -1)]
    if workflow is not None:
        found = await tracking.workflow(workflow)
        assert found is not None and found.request_ids == [f"mm-{i}" for i in range(n + 1)]
        assert found.counts["requests"] == n + 1
        for agent in ("ag", None):
            assert await tracking.recent_workflows(agent, 10) == [(workflow, START + n)]
    await tracking.close()


async def test_outage_keeps_every_count_and_the_newest_decisions_in_order(
    make: Make, own_redis_server: RedisServer
) -> None:
    tracking = make(own_redis_server.url)
    await tracking.write(stamped(0, "wf"))
    own_redis_server.stop()
    await tracking.write(stamped(1, "wf"))  # sent into the outage: in doubt
    n = 3 * KEPT
    for i in range(2, n):  # one hour and a bit: two timeline hashes of the agent
        await tracking.write(stamped(i * 30, "wf"))
    # in doubt: agent, global index, workflow, record; loose: the same coalesced + 1 record each
    assert tracking.pending == 4 + 3 + (n - 2)
    own_redis_server.start()
    assert await tracking.writer.flush() is True
    assert (tracking.dropped_updates, tracking.writer.replayed_writes) == (0, 0)
    ids = [0, 1, *(i * 30 for i in range(2, n))]
    stats = (await tracking.stats(["ag"]))["ag"]
    assert stats["m2|successes"] == n
    series = (await tracking.timeline(["ag"], START))["ag"]
    assert sum(bucket.get("m2|calls", 0.0) for bucket in series.values()) == n
    assert len({minute // 60 for minute in series}) == 2
    recent = await tracking.recent_decisions("ag", 1000)
    assert [e["id"] for e in recent] == [f"mm-{i}" for i in reversed(ids[-KEPT:])]
    found = await tracking.workflow("wf")
    assert found is not None and found.counts["requests"] == n
    assert found.request_ids == [f"mm-{i}" for i in ids]
    for agent in ("ag", None):
        assert await tracking.recent_workflows(agent, 10) == [("wf", START + ids[-1])]
    await tracking.close()


async def test_past_the_byte_bound_per_request_parts_are_dropped_and_sums_kept(
    make: Make, own_redis_server: RedisServer
) -> None:
    tracking = make(own_redis_server.url, buffer_bytes=4_000)
    await tracking.write(stamped(0, "wf"))
    own_redis_server.stop()
    n = 200
    for i in range(1, n + 1):
        await tracking.write(stamped(i, "wf"))
    counters = tracking.counters()
    assert counters["overflowed_records"] > 0
    assert 0 < counters["record_bytes"] <= counters["record_bytes_limit"] == 4_000
    own_redis_server.start()
    assert await tracking.writer.flush() is True
    stats = (await tracking.stats(["ag"]))["ag"]
    assert stats["m2|successes"] == n + 1  # the sums of entries that lost their parts
    series = (await tracking.timeline(["ag"], START))["ag"]
    assert sum(bucket.get("m2|calls", 0.0) for bucket in series.values()) == n + 1
    found = await tracking.workflow("wf")
    assert found is not None and found.counts["requests"] == n + 1
    ids = [int(i.removeprefix("mm-")) for i in found.request_ids]
    assert ids[0] == 0 and ids == sorted(set(ids))  # in order, none twice (some may be dropped)
    recent = [int(e["id"].removeprefix("mm-")) for e in await tracking.recent_decisions("ag", 1000)]
    assert recent[-1] == 0 and recent == sorted(set(recent), reverse=True) and len(recent) < KEPT
    await tracking.close()


async def test_recent_workflows_coalesced_in_the_agents_call_keep_each_latest_time(
    make: Make, own_redis_server: RedisServer
) -> None:
    tracking = make(own_redis_server.url)
    await tracking.write(stamped(0, "wf-0"))
    own_redis_server.stop()
    for i in range(1, 10):
        await tracking.write(stamped(i, f"wf-{i % 3}"))
    own_redis_server.start()
    assert await tracking.writer.flush() is True
    expected = [("wf-0", START + 9), ("wf-2", START + 8), ("wf-1", START + 7)]
    assert await tracking.recent_workflows("ag", 10) == expected
    assert await tracking.recent_workflows(None, 10) == expected
    await tracking.close()
