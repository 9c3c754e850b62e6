"""RedisTracking writes survive a Redis outage and count exactly once (real redis-server).

Outage: writes made while Redis is stopped are written when it is back, each once. Lost
reply/request: a TCP relay (lossy_proxy) loses one pipeline of script calls or its reply.
Buffer bound: the oldest writes are dropped and counted. Error replies (OOM, NOSCRIPT) and
the memory the sequence keys take.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.crc import key_slot
from support.lossy_proxy import LossyProxy
from support.redis_server import RedisServer

from proxy.tracking import lua
from proxy.tracking.backend import WorkflowRaw
from proxy.tracking.records import DecisionRecord, Tracked
from proxy.tracking.redis_backend import RedisTracking
from proxy.tracking.redis_pending import Members, Record
from proxy.tracking.redis_writer import TrackingWriter
from storage.redis.client import connect

AGENT = "agent-1"
WORKFLOW = "wf-1"
DAY = 86_400.0


def tracked(i: int, *, workflow: str | None = WORKFLOW, decision: bool = True) -> Tracked:
    """Outcome ``i``: 1 call of model m, latency i/4 s (exact in binary), request ``r<i>``."""
    record = DecisionRecord(
        request_id=f"r{i}",
        agent=AGENT,
        context="_all",
        candidates=("m", "n"),
        model="m",
        workflow=workflow,
        latency_s=i / 4,
        ttft_s=None,
        cost_usd=None,
        quality=1.0,
        applied=0.5,
    )
    return Tracked(
        agent=AGENT,
        workflow=workflow,
        request_id=f"r{i}",
        at=1000.0 + i,
        stats={"m|calls": 1.0, "m|lat_sum": i / 4},
        workflow_counts={"requests": 1.0, f"{AGENT}|m|calls": 1.0} if workflow else {},
        decision=record if decision else None,
    )


Make = Callable[..., RedisTracking]


@pytest.fixture
async def make() -> AsyncIterator[Make]:
    """``make(url, **writer_options)``: RedisTracking on its own client (short timeouts, fast
    retries); every client is closed after the test."""
    clients: list[redis.asyncio.Redis] = []

    def build(url: str, **kw: Any) -> RedisTracking:
        clients.append(connect(url, cluster=False, socket_timeout=0.3, connect_timeout=0.3))
        options = {"retry_interval_s": 0.05, **kw}
        return RedisTracking(
            clients[-1], prefix="mm", clock=lambda: 1000.0, retention_s=DAY, decision_ttl_s=DAY, **options
        )

    yield build
    for client in clients:
        await client.aclose()


async def stored(make: Make, server: RedisServer) -> tuple[dict[str, float], WorkflowRaw | None, list[str]]:
    """Stats of AGENT, the workflow, and the request ids with a decision record, read directly."""
    reader = make(server.url)
    stats = (await reader.stats([AGENT]))[AGENT]
    workflow = await reader.workflow(WORKFLOW)
    records = [f"r{i}" for i in range(20) if await reader.decision(f"r{i}") is not None]
    return stats, workflow, records


@pytest.fixture
async def relay(own_redis_server: RedisServer) -> AsyncIterator[LossyProxy]:
    proxy = await LossyProxy(own_redis_server.port).start()
    yield proxy
    await proxy.close()


async def test_writes_during_outage_are_written_once_when_redis_returns(
    make: Make, own_redis_server: RedisServer
) -> None:
    tracking = make(own_redis_server.url)
    await tracking.write_many([tracked(1)])
    assert tracking.pending == 0
    own_redis_server.stop()
    await tracking.write_many([tracked(2), tracked(3)])  # in flight when the outage is found
    for i in range(4, 8):
        await tracking.write(tracked(i))  # within retry_interval_s: buffered, not sent
    # coalesced per key: agent, global recent index, workflow; + 1 record each
    assert tracking.pending == (3 + 2) + (3 + 4)  # in doubt (writes 2-3), loose (4-7)
    assert await tracking.writer.flush() is False
    own_redis_server.start()
    assert await tracking.writer.flush() is True
    stats, workflow, records = await stored(make, own_redis_server)
    assert stats == {"m|calls": 7.0, "m|lat_sum": sum(i / 4 for i in range(1, 8))}
    assert workflow is not None
    assert workflow.counts == {"requests": 7.0, f"{AGENT}|m|calls": 7.0}
    assert workflow.request_ids == [f"r{i}" for i in range(1, 8)]
    assert records == [f"r{i}" for i in range(1, 8)]
    assert await tracking.agents() == [AGENT]
    assert await tracking.recent_workflows(AGENT, 10) == [(WORKFLOW, 1007.0)]
    assert (tracking.dropped_updates, tracking.writer.replayed_writes) == (0, 0)
    await tracking.close()


async def test_retry_task_writes_buffered_calls_and_close_flushes(
    make: Make, own_redis_server: RedisServer
) -> None:
    tracking = make(own_redis_server.url)
    await tracking.start()
    own_redis_server.stop()
    await tracking.write(tracked(1))
    assert tracking.pending > 0
    own_redis_server.start()
    for _ in range(100):
        if tracking.pending == 0:
            break
        await asyncio.sleep(0.02)
    assert tracking.pending == 0  # written by the retry task, not by a write or flush
    own_redis_server.stop()
    await tracking.write(tracked(2))
    own_redis_server.start()
    await tracking.close()  # stops the task, flushes what is left
    stats, workflow, _ = await stored(make, own_redis_server)
    assert stats["m|calls"] == 2.0
    assert workflow is not None and workflow.request_ids == ["r1", "r2"]


async def test_lost_reply_counts_once_and_does_not_undo_feedback(
    make: Make, relay: LossyProxy, own_redis_server: RedisServer
) -> None:
    tracking = make(relay.url)
    await tracking.write(tracked(1))  # connection open, scripts loaded, agent registered
    relay.lose("reply")
    await tracking.write_many([tracked(2), tracked(3)])
    assert relay.lost == 1
    # all in doubt, coalesced: agent, global recent index, workflow, 2 records
    assert tracking.pending == 5
    stats, workflow, records = await stored(make, own_redis_server)
    assert stats["m|calls"] == 3.0 and records == ["r1", "r2", "r3"]  # Redis applied them
    assert await tracking.swap_applied("r2", 0.5, 0.9, 1.0) is True  # feedback meanwhile
    assert await tracking.writer.flush() is True
    assert tracking.writer.replayed_writes == 5  # every resent call was recognised
    stats, workflow, records = await stored(make, own_redis_server)
    assert stats == {"m|calls": 3.0, "m|lat_sum": 0.25 + 0.5 + 0.75}
    assert workflow is not None and workflow.counts["requests"] == 3.0
    assert workflow.request_ids == ["r1", "r2", "r3"]
    record = await tracking.decision("r2")
    assert record is not None and (record.applied, record.score) == (0.9, 1.0)  # not reset
    await tracking.close()


async def test_lost_request_is_written_by_the_resend(
    make: Make, relay: LossyProxy, own_redis_server: RedisServer
) -> None:
    tracking = make(relay.url)
    await tracking.write(tracked(1))
    relay.lose("request")
    await tracking.write(tracked(2))
    assert relay.lost == 1 and tracking.pending == 4  # agent, global index, workflow, record
    assert (await stored(make, own_redis_server))[0]["m|calls"] == 1.0  # never reached Redis
    assert await tracking.writer.flush() is True
    assert tracking.writer.replayed_writes == 0
    stats, workflow, records = await stored(make, own_redis_server)
    assert stats["m|calls"] == 2.0 and records == ["r1", "r2"]
    assert workflow is not None and workflow.request_ids == ["r1", "r2"]
    await tracking.close()


async def test_seq_keys_live_in_the_calls_slots_with_the_ttl(
    make: Make, own_redis_server: RedisServer
) -> None:
    tracking = make(own_redis_server.url, seq_ttl_s=120.0)
    await tracking.write(tracked(1))
    keys = ["mm:wf:{wf-1}", "mm:{agent-1}:stats", "mm:req:r1", "mm:stats:agents", "mm:wfs"]
    with redis.Redis.from_url(own_redis_server.url) as direct:
        seqs = direct.keys("mm:seq:*")
        ttls = {direct.ttl(k) for k in seqs}
    assert sorted(key_slot(k) for k in seqs) == sorted({key_slot(k.encode()) for k in keys})
    assert all(110 < ttl <= 120 for ttl in ttls)
    await tracking.close()


async def test_seq_keys_do_not_grow_with_writes(make: Make, own_redis_server: RedisServer) -> None:
    tracking = make(own_redis_server.url)
    for i in range(500):
        await tracking.write(tracked(i, decision=False))
    tracking2 = make(own_redis_server.url)  # a second writer: its own keys
    await tracking2.write_many([tracked(i, decision=False) for i in range(500, 600)])
    with redis.Redis.from_url(own_redis_server.url) as direct:
        seqs = list(direct.scan_iter(match="mm:seq:*"))
        size = direct.dbsize()
    keys = ("mm:wf:{wf-1}", "mm:{agent-1}:stats", "mm:stats:agents", "mm:wfs")
    slots = {key_slot(k.encode()) for k in keys}
    assert len(seqs) == 2 * len(slots)  # per writer and slot written, not per write (1800 calls)
    assert size == len(seqs) + 6  # stats, agents, recent x 2, workflow and its list
    assert (await tracking.stats([AGENT]))[AGENT]["m|calls"] == 600.0
    await tracking.close()
    await tracking2.close()


async def test_error_reply_is_not_applied_and_is_resent(make: Make, own_redis_server: RedisServer) -> None:
    tracking = make(own_redis_server.url)
    await tracking.write(tracked(1))
    with redis.Redis.from_url(own_redis_server.url) as direct:
        direct.config_set("maxmemory", 1)  # every script now answers OOM before writing
        await tracking.write(tracked(2))
        # one OOM per slot (agent, workflow, request, global index); the second call in a
        # slot answers NOT_APPLIED (it waits for the first)
        assert tracking.pending == 4 and tracking.writer.failed_writes == 4
        direct.config_set("maxmemory", 0)
    await tracking.write(tracked(3))  # sent with them, under new seqs
    assert (tracking.pending, tracking.writer.replayed_writes, tracking.dropped_updates) == (0, 0, 0)
    stats, workflow, records = await stored(make, own_redis_server)
    assert stats["m|calls"] == 3.0 and records == ["r1", "r2", "r3"]
    assert workflow is not None and workflow.counts["requests"] == 3.0
    await tracking.close()


async def test_call_after_one_redis_did_not_run_in_its_slot_waits_for_it(
    make: Make, own_redis_server: RedisServer
) -> None:
    """Two calls in one slot, the first NOSCRIPT: the second must not be applied ahead of it
    (its higher seq would make the first one's rerun look already applied)."""
    tracking = make(own_redis_server.url)
    writer = tracking.writer
    with redis.Redis.from_url(own_redis_server.url) as direct:
        direct.script_flush()
        direct.script_load(lua.PUT.text)  # MEMBERS is missing, PUT is not
        await writer.write(
            [Members("mm:{t}:set", {"a"}, 0), Record("mm:{t}:hash", b'{"k": "v"}', int(DAY * 1000))]
        )
        assert (writer.pending, writer.replayed_writes, writer.failed_writes) == (0, 0, 0)
        assert direct.smembers("mm:{t}:set") == {b"a"}
        assert direct.hgetall("mm:{t}:hash") == {b"k": b"v"}
    await tracking.close()


async def test_outage_buffer_coalesces_sums_and_bounds_records_by_bytes(
    make: Make, own_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    tracking = make(own_redis_server.url, buffer_bytes=2_000, retry_interval_s=60.0)
    await tracking.write(tracked(0))  # agent registered, scripts loaded
    own_redis_server.stop()
    await tracking.write(tracked(1, workflow=None, decision=False))  # sent: in doubt (1 entry)
    for i in range(2, 3002):  # sums of 3000 outcomes: one stats entry
        await tracking.write(tracked(i, workflow=None, decision=False))
    assert (tracking.pending, tracking.dropped_updates) == (1 + 1, 0)
    with caplog.at_level(logging.WARNING, logger="model_manager.store"):
        for i in range(3002, 3022):  # 20 decision records; about 500 B each, room for 2,000 B
            await tracking.write(tracked(i, workflow=None))
    counters = tracking.counters()
    kept = 20 - counters["overflowed_records"]
    assert 0 < kept < 20 and counters["record_bytes"] <= counters["record_bytes_limit"] == 2_000
    assert tracking.dropped_updates == counters["overflowed_records"]
    assert any("buffer full" in r.getMessage() for r in caplog.records)
    own_redis_server.start()
    assert await tracking.writer.flush() is True
    stats, _, _ = await stored(make, own_redis_server)
    assert stats == {"m|calls": 3022.0, "m|lat_sum": sum(i / 4 for i in range(3022))}
    assert [await tracking.decision(f"r{i}") is not None for i in range(3002, 3022)] == [False] * (
        20 - kept
    ) + [True] * kept  # the oldest records were the ones dropped
    await tracking.close()


def clocked(make: Make, url: str, clock: list[float]) -> RedisTracking:
    """RedisTracking whose writer (own client, closed by ``close_clocked``) runs on ``clock``
    with a seq TTL of 10 s."""
    tracking = make(url)
    client = connect(url, cluster=False, socket_timeout=0.3, connect_timeout=0.3)
    tracking.writer = TrackingWriter(
        client, retry_interval_s=0.05, seq_ttl_s=10.0, monotonic=lambda: clock[0]
    )
    return tracking


async def close_clocked(tracking: RedisTracking) -> None:
    await tracking.close()
    await tracking.writer._client.aclose()


async def test_in_doubt_write_older_than_seq_ttl_is_dropped_not_resent(
    make: Make, relay: LossyProxy, own_redis_server: RedisServer
) -> None:
    clock = [1000.0]
    tracking = clocked(make, relay.url, clock)
    await tracking.write(tracked(1, workflow=None, decision=False))
    relay.lose("reply")
    await tracking.write(tracked(2, workflow=None, decision=False))
    clock[0] += 9.1  # past 0.9 x TTL: its seq key may be gone, a resend could count twice
    assert await tracking.writer.flush() is True
    assert (tracking.pending, tracking.dropped_updates, tracking.writer.replayed_writes) == (0, 1, 0)
    assert (await stored(make, own_redis_server))[0]["m|calls"] == 2.0
    await close_clocked(tracking)


async def test_long_outage_expires_only_the_writes_sent_into_it(
    make: Make, own_redis_server: RedisServer
) -> None:
    clock = [1000.0]
    tracking = clocked(make, own_redis_server.url, clock)
    await tracking.write(tracked(1, workflow=None, decision=False))
    own_redis_server.stop()
    await tracking.write(tracked(2, workflow=None, decision=False))  # sent: in doubt
    clock[0] += 1.0  # past the retry interval: the next write tries Redis again
    await tracking.write(tracked(3, workflow=None, decision=False))  # not sent: in-doubt one failed
    clock[0] += 9.0
    own_redis_server.start()
    assert await tracking.writer.flush() is True
    assert tracking.dropped_updates == 1  # write 2 (its seq key could have expired); 3 never sent
    assert (await stored(make, own_redis_server))[0] == {"m|calls": 2.0, "m|lat_sum": 0.25 + 0.75}
    await close_clocked(tracking)
