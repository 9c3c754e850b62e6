"""RedisTracking's bounds on state: agent keys expire when idle, and the agents index is
repaired after Redis loses its data (real redis-server)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio
from support.redis_server import RedisServer

from policies.base import Delta, Table
from proxy.tracking.records import Tracked
from proxy.tracking.redis_backend import RedisTracking
from storage.redis.client import connect
from storage.redis.store import RedisStore

DAY = 86_400.0
Make = Callable[..., RedisTracking]


def tracked(agent: str, i: int) -> Tracked:
    return Tracked(
        agent=agent, workflow=None, request_id=f"{agent}-{i}", at=1000.0 + i,
        stats={"m|calls": 1.0}, workflow_counts={}, decision=None,
    )  # fmt: skip


@pytest.fixture
async def make() -> AsyncIterator[Make]:
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


async def test_agents_index_is_repaired_after_redis_restarts_empty(make: Make, tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis", persistent=False) as server:
        tracking = make(server.url)
        await tracking.write_many([tracked("a", 0), tracked("b", 0)])
        assert await tracking.agents() == ["a", "b"]
        server.stop()
        server.start()  # empty: stats and the agents set are gone
        for i in range(1, 4):  # within the minute the index is otherwise refreshed in
            await tracking.write_many([tracked("a", i), tracked("b", i)])
            await tracking.writer.flush()
        assert await tracking.writer.flush() is True
        assert await tracking.agents() == ["a", "b"]
        stats = await tracking.stats(["a", "b"])
        assert stats["a"]["m|calls"] == stats["b"]["m|calls"] > 0
        await tracking.close()


async def test_agents_index_is_repaired_after_flushall(make: Make, redis_server: RedisServer) -> None:
    tracking = make(redis_server.url)
    await tracking.write(tracked("a", 0))
    with redis.Redis.from_url(redis_server.url) as direct:
        direct.flushall()
    await tracking.write(tracked("a", 1))
    assert await tracking.writer.flush() is True
    assert await tracking.agents() == ["a"]
    await tracking.close()


async def test_agent_keys_expire_after_the_agent_ttl_and_leave_the_index(
    make: Make, redis_server: RedisServer
) -> None:
    tracking = make(redis_server.url, agent_ttl_s=3600.0)
    store = RedisStore.from_url(redis_server.url, key_ttl_s=3600.0)
    await tracking.write_many([tracked("idle", 0), tracked("busy", 0)])
    await store.apply([Delta(Table("idle"), "m", 1, 0), Delta(Table("*"), "m", 1, 0)])
    with redis.Redis.from_url(redis_server.url) as direct:
        keys = ["mm:{idle}:stats", "mm:stats:agents", "mm:{idle}:post:_all", "mm:{%2A}:post:_all"]
        ttls = [direct.pttl(key) for key in keys]
        assert all(3_500_000 < ttl <= 3_600_000 for ttl in ttls), ttls
        direct.delete("mm:{idle}:stats")  # as if expired: idle for agent_ttl_s
        assert await tracking.agents() == ["busy"]
        assert direct.smembers("mm:stats:agents") == {b"busy"}
    await tracking.close()
    await store.close()


async def test_without_an_agent_ttl_agent_keys_do_not_expire(make: Make, redis_server: RedisServer) -> None:
    tracking = make(redis_server.url)
    store = RedisStore.from_url(redis_server.url)
    await tracking.write(tracked("a", 0))
    await store.apply([Delta(Table("a"), "m", 1, 0)])
    with redis.Redis.from_url(redis_server.url) as direct:
        keys = ["mm:{a}:stats", "mm:stats:agents", "mm:{a}:post:_all"]
        assert [direct.pttl(key) for key in keys] == [-1, -1, -1]
    await tracking.close()
    await store.close()
