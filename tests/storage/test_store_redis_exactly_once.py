"""RedisStore writes are applied exactly once when a script call or its reply is lost.

A real redis-server behind a TCP relay that loses one EVALSHA or its reply on purpose; error
replies (OOM) and the memory the sequence keys take.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from policies.base import POOLED, Delta, Evidence, Table
from storage.redis.store import RedisStore

try:
    from support.lossy_proxy import LossyProxy
    from support.redis_server import RedisServer
except ImportError:
    from tests.lossy_proxy import LossyProxy
    from tests.redis_server import RedisServer

AGENT = Table("agent-1")
POOL = Table(POOLED)


@pytest.fixture
async def proxy(own_redis_server: RedisServer) -> AsyncIterator[LossyProxy]:
    relay = await LossyProxy(own_redis_server.port).start()
    yield relay
    await relay.close()


async def stored(server: RedisServer, table: Table = AGENT, model: str = "m") -> Evidence:
    """What Redis holds, read directly (not through the relay)."""
    reader = RedisStore.from_url(server.url)
    try:
        return (await reader.load([table], [model]))[table][model]
    finally:
        await reader.close()


async def warm(proxy: LossyProxy, **kw: object) -> RedisStore:
    """A store through ``proxy`` with one write done (connection open, script loaded)."""
    store = RedisStore.from_url(proxy.url, retry_interval_s=0.05, **kw)  # type: ignore[arg-type]
    await store.apply([Delta(AGENT, "m", 1, 0)])
    assert store.pending == 0
    return store


async def test_write_whose_reply_is_lost_counts_once(
    proxy: LossyProxy, own_redis_server: RedisServer
) -> None:
    store = await warm(proxy)
    proxy.lose("reply")
    await store.apply([Delta(AGENT, "m", 1, 0), Delta(POOL, "m", 0, 1)])
    assert proxy.lost == 1
    assert store.pending == 2  # in doubt: the store cannot know it was applied
    assert await stored(own_redis_server) == Evidence(2, 0)  # ... but Redis applied it
    assert await store.flush() is True
    assert store.replayed_batches == 2  # both scopes' script calls were recognised
    assert await stored(own_redis_server) == Evidence(2, 0)
    assert await stored(own_redis_server, POOL) == Evidence(0, 1)
    assert store.dropped_updates == 0
    await store.close()


async def test_lost_reply_then_new_deltas_each_count_once(
    proxy: LossyProxy, own_redis_server: RedisServer
) -> None:
    store = await warm(proxy)
    proxy.lose("reply")
    await store.apply([Delta(AGENT, "m", 1, 0)])
    for _ in range(3):  # buffered (within retry_interval_s) next to the in-doubt batch
        await store.apply([Delta(AGENT, "m", 0, 1), Delta(POOL, "m", 1, 0)])
    assert store.pending == 1 + 2  # the in-doubt cell, and the new deltas coalesced per cell
    assert await store.flush() is True
    assert store.replayed_batches == 1
    assert await stored(own_redis_server) == Evidence(2, 3)
    assert await stored(own_redis_server, POOL) == Evidence(3, 0)
    await store.close()


async def test_write_whose_request_is_lost_is_applied_by_the_retry(
    proxy: LossyProxy, own_redis_server: RedisServer
) -> None:
    store = await warm(proxy)
    proxy.lose("request")
    await store.apply([Delta(AGENT, "m", 0, 1)])
    assert proxy.lost == 1
    assert store.pending == 1
    assert await stored(own_redis_server) == Evidence(1, 0)  # never reached Redis
    assert await store.flush() is True
    assert store.replayed_batches == 0
    assert await stored(own_redis_server) == Evidence(1, 1)
    await store.close()


async def test_seq_survives_redis_restart(proxy: LossyProxy, own_redis_server: RedisServer) -> None:
    store = await warm(proxy)
    proxy.lose("reply")
    await store.apply([Delta(AGENT, "m", 1, 0)])
    own_redis_server.stop()
    assert await store.flush() is False
    own_redis_server.start()  # data and seq keys from the AOF; scripts gone (NOSCRIPT, reload)
    assert await store.flush() is True
    assert store.replayed_batches == 1
    assert await stored(own_redis_server) == Evidence(2, 0)
    await store.close()


async def test_in_doubt_batch_older_than_seq_ttl_is_dropped_not_resent(
    proxy: LossyProxy, own_redis_server: RedisServer
) -> None:
    clock = [1000.0]
    store = await warm(proxy, seq_ttl_s=10.0, monotonic=lambda: clock[0])
    proxy.lose("reply")
    await store.apply([Delta(AGENT, "m", 1, 0)])
    clock[0] += 8.9  # younger than 0.9 x TTL: resent under its seq
    proxy.lose("reply")
    assert await store.flush() is False
    assert store.pending == 1
    clock[0] += 0.2  # its seq key may be gone: resending could count it twice
    assert await store.flush() is True
    assert (store.pending, store.dropped_updates, store.replayed_batches) == (0, 1, 0)
    assert await stored(own_redis_server) == Evidence(2, 0)
    await store.close()


async def test_error_reply_is_not_applied_and_is_resent(own_redis_server: RedisServer) -> None:
    store = RedisStore.from_url(own_redis_server.url, retry_interval_s=0.05)
    await store.apply([Delta(AGENT, "m", 1, 0)])
    admin = redis.asyncio.Redis.from_url(own_redis_server.url)
    await admin.config_set("maxmemory", 1)  # every script now answers OOM before writing
    await store.apply([Delta(AGENT, "m", 1, 0), Delta(POOL, "m", 0, 1)])
    assert store.pending == 2  # answered "not applied": buffered again, not dropped
    await admin.config_set("maxmemory", 0)
    await store.apply([Delta(AGENT, "m", 0, 1)])  # merged with them, under a new seq
    assert (store.pending, store.replayed_batches, store.dropped_updates) == (0, 0, 0)
    assert await stored(own_redis_server) == Evidence(2, 1)
    assert await stored(own_redis_server, POOL) == Evidence(0, 1)
    await admin.aclose()
    await store.close()


async def test_seq_keys_do_not_grow_with_writes(own_redis_server: RedisServer) -> None:
    store = RedisStore.from_url(own_redis_server.url)
    for i in range(500):
        await store.apply([Delta(AGENT, "m", 1, 0), Delta(Table("agent-1", f"c{i % 7}"), "m", 0, 1)])
        await store.apply([Delta(POOL, "m", 1, 0)])
    admin = redis.asyncio.Redis.from_url(own_redis_server.url)
    seq_keys = [k async for k in admin.scan_iter(match="mm:seq:*")]
    assert len(seq_keys) == 2  # one per slot written (agent-1's and the pool's), not per write
    assert await admin.dbsize() == 2 + 1 + 7 + 1  # seq keys + agent-1's 8 tables + the pool's
    assert await stored(own_redis_server) == Evidence(500, 0)
    await admin.aclose()
    await store.close()
