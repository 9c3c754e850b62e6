"""RedisStore while its redis-server is stopped and started again."""

from __future__ import annotations

import asyncio
import logging

import pytest

from policies.base import Delta, Evidence, Table
from storage.errors import StoreUnavailable
from storage.redis.store import RedisStore

try:
    from support.redis_server import RedisServer
except ImportError:
    from tests.redis_server import RedisServer

AGENT = Table("agent-1")
OTHER = Table("agent-2")


def make(server: RedisServer, **kw: object) -> RedisStore:
    return RedisStore.from_url(server.url, retry_interval_s=0.05, **kw)  # type: ignore[arg-type]


async def test_load_serves_last_good_read_or_raises(own_redis_server: RedisServer) -> None:
    store = make(own_redis_server)
    await store.apply([Delta(AGENT, "m", 3, 1)])
    assert (await store.load([AGENT], ["m", "n"]))[AGENT] == {"m": Evidence(3, 1), "n": Evidence()}
    own_redis_server.stop()
    assert (await store.load([AGENT], ["m", "n"]))[AGENT] == {"m": Evidence(3, 1), "n": Evidence()}
    assert store.unavailable_reads == 1
    with pytest.raises(StoreUnavailable):
        await store.load([AGENT, OTHER], ["m"])  # OTHER was never read
    with pytest.raises(StoreUnavailable):
        await store.load([AGENT], ["m", "never-read"])
    assert store.failed_reads == 2
    assert await store.ping() is False
    own_redis_server.start()
    await asyncio.sleep(0.06)  # past retry_interval_s: reads go to Redis again
    assert await store.ping() is True
    assert (await store.load([OTHER], ["m"]))[OTHER] == {"m": Evidence()}
    await store.close()


async def test_buffered_updates_are_applied_exactly_once(own_redis_server: RedisServer) -> None:
    store = make(own_redis_server)
    await store.apply([Delta(AGENT, "m", 1, 0)])
    own_redis_server.stop()
    for i in range(300):
        await store.apply([Delta(AGENT, "m", i % 2, 1 - i % 2), Delta(OTHER, "x", 1, 1)])
    assert await store.flush() is False
    assert await store.flush() is False
    assert store.pending == 2 + 2  # one in-doubt batch per scope; the rest coalesced per cell
    own_redis_server.start()
    assert await store.flush() is True
    assert await store.flush() is True
    assert store.pending == 0
    assert store.replayed_batches == 0  # the in-doubt batch never reached Redis: applied now
    await store.apply([Delta(AGENT, "m", 1, 0)])
    snap = await store.load([AGENT, OTHER], ["m", "x"])
    assert snap[AGENT]["m"] == Evidence(1 + 150 + 1, 150)
    assert snap[OTHER]["x"] == Evidence(300, 300)
    assert store.dropped_updates == 0
    await store.close()


async def test_next_apply_after_recovery_flushes_buffer(own_redis_server: RedisServer) -> None:
    store = make(own_redis_server)
    own_redis_server.stop()
    await store.apply([Delta(AGENT, "m", 2, 0)])
    await store.apply([Delta(AGENT, "m", 0, 3)])
    own_redis_server.start()
    await asyncio.sleep(0.06)
    await store.apply([Delta(AGENT, "m", 1, 1)])
    assert store.pending == 0
    assert (await store.load([AGENT], ["m"]))[AGENT]["m"] == Evidence(3, 4)
    await store.close()


async def test_retry_task_flushes_in_background(own_redis_server: RedisServer) -> None:
    store = make(own_redis_server)
    await store.start()
    own_redis_server.stop()
    await store.apply([Delta(AGENT, "m", 5, 5)])
    assert store.pending == 1
    own_redis_server.start()
    for _ in range(100):
        if store.pending == 0:
            break
        await asyncio.sleep(0.02)
    assert store.pending == 0  # pending counts a sent batch until Redis answers it: written
    fresh = make(own_redis_server)
    assert (await fresh.load([AGENT], ["m"]))[AGENT]["m"] == Evidence(5, 5)
    await fresh.close()
    await store.close()


async def test_pending_counts_a_write_sent_and_not_yet_answered(own_redis_server: RedisServer) -> None:
    store = make(own_redis_server, socket_timeout=5.0)
    await store.start()
    pauser = make(own_redis_server)
    await pauser.ping()
    await pauser.client.execute_command("CLIENT", "PAUSE", "300")
    writing = asyncio.create_task(store.apply([Delta(AGENT, "m", 2, 1)]))
    await asyncio.sleep(0.1)
    assert not writing.done()  # the batch is out of the buffer, and Redis has not answered
    assert store.pending == 1
    await writing
    assert store.pending == 0
    assert (await pauser.load([AGENT], ["m"]))[AGENT]["m"] == Evidence(2, 1)
    await pauser.close()
    await store.close()


async def test_outage_buffer_coalesces_per_cell_and_bounds_distinct_cells(
    own_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    store = make(own_redis_server, buffer_limit=5)
    own_redis_server.stop()
    for i in range(1, 2001):  # the first is sent (in doubt); the rest: one buffered entry
        await store.apply([Delta(AGENT, "m", float(i % 2), float(1 - i % 2))])
    assert (store.pending, store.dropped_updates) == (1 + 1, 0)
    with caplog.at_level(logging.WARNING, logger="model_manager.store"):
        for i in range(8):  # 8 new cells, room for 4 more loose: the last 4 are dropped
            await store.apply([Delta(AGENT, f"x{i}", 1.0, 0.0)])
    assert (store.pending, store.dropped_updates) == (1 + 5, 4)
    assert any("dropped" in r.getMessage() for r in caplog.records)
    own_redis_server.start()
    assert await store.flush() is True
    snap = await store.load([AGENT], ["m", "x3", "x4"])
    assert snap[AGENT] == {"m": Evidence(1000, 1000), "x3": Evidence(1, 0), "x4": Evidence()}
    await store.close()


async def test_buffered_deltas_decay_from_their_own_time(own_redis_server: RedisServer) -> None:
    now = [100.0]
    store = make(own_redis_server, half_life_s=10.0, clock=lambda: now[0])
    await store.apply([Delta(AGENT, "m", 8, 0)])
    own_redis_server.stop()
    await store.apply([Delta(AGENT, "m", 4, 0)])  # at t=100, buffered
    now[0] = 120.0
    own_redis_server.start()
    assert await store.flush() is True
    assert (await store.load([AGENT], ["m"]))[AGENT]["m"] == Evidence(3, 0)
    await store.close()


async def test_close_flushes_buffer(own_redis_server: RedisServer) -> None:
    store = make(own_redis_server)
    own_redis_server.stop()
    await store.apply([Delta(AGENT, "m", 1, 2)])
    own_redis_server.start()
    await store.close()
    fresh = make(own_redis_server)
    assert (await fresh.load([AGENT], ["m"]))[AGENT]["m"] == Evidence(1, 2)
    await fresh.close()


async def test_close_while_down_does_not_raise(
    own_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    store = make(own_redis_server)
    own_redis_server.stop()
    await store.apply([Delta(AGENT, "m", 1, 2)])
    with caplog.at_level(logging.ERROR, logger="model_manager.store"):
        await store.close()
    assert any("1 buffered updates unwritten" in r.getMessage() for r in caplog.records)


async def test_data_survives_redis_restart(own_redis_server: RedisServer) -> None:
    store = make(own_redis_server)
    await store.apply([Delta(AGENT, "m", 0.5, 0.25)])
    own_redis_server.stop()
    own_redis_server.start()
    await asyncio.sleep(0.06)
    assert (await store.load([AGENT], ["m"]))[AGENT]["m"] == Evidence(0.5, 0.25)
    assert store.unavailable_reads == 0
    await store.close()


async def test_coalesced_deltas_decay_as_if_applied_one_by_one(
    own_redis_server: RedisServer, redis_server: RedisServer
) -> None:
    """Deltas made at different times during an outage are one buffered entry, yet the
    flushed cell equals the same deltas applied one by one with Redis up (half-life 100 s)."""
    clock = [1000.0]
    buffered = make(own_redis_server, half_life_s=100.0, clock=lambda: clock[0])
    direct = RedisStore.from_url(redis_server.url, half_life_s=100.0, clock=lambda: clock[0])
    await buffered.apply([Delta(AGENT, "m", 1, 0)])
    await direct.apply([Delta(AGENT, "m", 1, 0)])
    own_redis_server.stop()
    for i in range(1, 60):
        clock[0] = 1000.0 + 7.5 * i
        delta = Delta(AGENT, "m", float(i % 2), float(i % 3 == 0))
        await buffered.apply([delta])
        await direct.apply([delta])
    assert buffered.pending == 1 + 1  # the in-doubt batch and one coalesced entry
    clock[0] += 50.0
    own_redis_server.start()
    assert await buffered.flush() is True
    got = (await buffered.load([AGENT], ["m"]))[AGENT]["m"]
    want = (await direct.load([AGENT], ["m"]))[AGENT]["m"]
    assert got.successes == pytest.approx(want.successes, rel=1e-12)
    assert got.failures == pytest.approx(want.failures, rel=1e-12)
    assert 1 < want.successes < 30  # decayed: less than the 30 successes sent
    await buffered.close()
    await direct.close()
