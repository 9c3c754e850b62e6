"""RedisStore against a real redis-server: schema, corrupt cells, atomicity, persistence."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio
from redis.crc import key_slot

from policies.base import POOLED, Delta, Evidence, Table
from storage.redis.store import RedisStore

try:
    from support.redis_server import RedisServer
except ImportError:
    from tests.redis_server import RedisServer

AGENT = Table("agent-1")
KEY = "mm:{agent-1}:post:_all"


@pytest.fixture
async def raw(redis_server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture
async def store(redis_server: RedisServer) -> AsyncIterator[RedisStore]:
    s = RedisStore.from_url(redis_server.url)
    yield s
    await s.close()


async def test_key_schema(store: RedisStore, raw: redis.asyncio.Redis) -> None:
    await store.apply([Delta(AGENT, "m1", 1, 0), Delta(Table(POOLED, "code"), "a:b", 0, 1)])
    assert sorted(await raw.keys("*:post:*")) == [b"mm:{%2A}:post:code", KEY.encode()]
    fields = await raw.hgetall(KEY)
    assert set(fields) == {b"m1:s", b"m1:f", b"m1:t"}
    assert (float(fields[b"m1:s"]), float(fields[b"m1:f"])) == (1.0, 0.0)
    assert set(await raw.hgetall("mm:{%2A}:post:code")) == {b"a:b:s", b"a:b:f", b"a:b:t"}


async def test_one_seq_key_per_slot_with_a_ttl(redis_server: RedisServer, raw: redis.asyncio.Redis) -> None:
    store = RedisStore.from_url(redis_server.url, seq_ttl_s=120.5)
    for _ in range(3):
        await store.apply([Delta(AGENT, "m", 1, 0), Delta(Table("agent-1", "code"), "m", 1, 0)])
        await store.apply([Delta(Table(POOLED), "m", 1, 0), Delta(Table(POOLED, "x"), "n", 1, 0)])
    seqs = sorted(await raw.keys("mm:seq:*"), key=key_slot)
    assert len(seqs) == 2  # one per slot written, not one per write
    assert [key_slot(k) for k in seqs] == sorted([key_slot(b"mm:{%2A}:post:x"), key_slot(KEY.encode())])
    assert all(re.fullmatch(rb"mm:seq:\{[A-Za-z0-9]{1,3}\}:[0-9a-f]{16}", k) for k in seqs)
    assert len({k.rsplit(b":", 1)[1] for k in seqs}) == 1  # one writer id
    assert sorted([int(await raw.get(k)) for k in seqs]) == [5, 6]  # last seq applied per slot
    assert all(120 <= ttl <= 121 for ttl in [await raw.ttl(k) for k in seqs])  # ceil(120.5)
    assert await store.dump() == {
        "agent-1": {"": {"m": Evidence(3, 0)}, "code": {"m": Evidence(3, 0)}},
        "*": {"": {"m": Evidence(3, 0)}, "x": {"n": Evidence(3, 0)}},
    }
    await store.close()


async def test_prefix_separates_stores(redis_server: RedisServer, store: RedisStore) -> None:
    other = RedisStore.from_url(redis_server.url, prefix="staging")
    await other.apply([Delta(AGENT, "m", 5, 0)])
    await store.apply([Delta(AGENT, "m", 1, 0)])
    assert (await other.load([AGENT], ["m"]))[AGENT]["m"] == Evidence(5, 0)
    assert await store.dump() == {"agent-1": {"": {"m": Evidence(1, 0)}}}
    await other.close()


@pytest.mark.parametrize("garbage", [b"-3", b"nan", b"inf", b"-inf", b"abc", b"\xff", b""])
async def test_corrupt_cell_reads_empty_and_apply_repairs(
    store: RedisStore, raw: redis.asyncio.Redis, garbage: bytes
) -> None:
    await raw.hset(KEY, mapping={"m:s": garbage, "m:f": b"2", "m:t": b"1"})
    await raw.hset(KEY, mapping={"ok:s": b"0", "ok:f": b"3", "ok:t": b"1"})
    snap = await store.load([AGENT], ["m", "ok"])
    assert snap[AGENT] == {"m": Evidence(), "ok": Evidence(0, 3)}
    assert store.corrupt_reads == 1
    await store.apply([Delta(AGENT, "m", 1.0, 0.0)])
    assert store.repaired_cells == 1
    assert (await store.load([AGENT], ["m"]))[AGENT]["m"] == Evidence(1.0, 0.0)
    assert store.corrupt_reads == 1


async def test_corrupt_time_field_reads_empty(store: RedisStore, raw: redis.asyncio.Redis) -> None:
    await raw.hset(KEY, mapping={"m:s": b"4", "m:f": b"2", "m:t": b"yesterday"})
    assert (await store.load([AGENT], ["m"]))[AGENT]["m"] == Evidence()
    assert store.corrupt_reads == 1


async def test_key_of_wrong_type_reads_empty_and_is_repaired(
    store: RedisStore, raw: redis.asyncio.Redis
) -> None:
    await raw.set(KEY, "not a hash")
    assert (await store.load([AGENT], ["m1", "m2"]))[AGENT] == {"m1": Evidence(), "m2": Evidence()}
    assert store.corrupt_reads == 2
    await store.apply([Delta(AGENT, "m1", 0, 1)])
    assert (await store.load([AGENT], ["m1"]))[AGENT]["m1"] == Evidence(0, 1)
    assert await store.dump() == {"agent-1": {"": {"m1": Evidence(0, 1)}}}


async def test_dump_skips_corrupt_cells(store: RedisStore, raw: redis.asyncio.Redis) -> None:
    await store.apply([Delta(AGENT, "good", 1, 1)])
    await raw.hset(KEY, mapping={"bad:s": b"nan", "bad:f": b"1", "bad:t": b"1"})
    await raw.set("mm:{x}:post:code", "garbage")
    assert await store.dump() == {"agent-1": {"": {"good": Evidence(1, 1)}}}
    assert store.corrupt_reads == 2


async def test_script_is_reloaded_after_script_flush(
    store: RedisStore, raw: redis.asyncio.Redis
) -> None:
    await store.apply([Delta(AGENT, "m", 1, 0)])
    await raw.script_flush()
    await store.apply([Delta(AGENT, "m", 1, 0), Delta(Table("b"), "m", 0, 1)])
    snap = await store.load([AGENT, Table("b")], ["m"])
    assert snap == {AGENT: {"m": Evidence(2, 0)}, Table("b"): {"m": Evidence(0, 1)}}


async def test_new_store_sees_stored_state(redis_server: RedisServer, store: RedisStore) -> None:
    await store.apply([Delta(AGENT, "m", 0.75, 0.25)])
    await store.close()
    again = RedisStore.from_url(redis_server.url)
    assert (await again.load([AGENT], ["m"]))[AGENT]["m"] == Evidence(0.75, 0.25)
    await again.close()


WRITER = """
import asyncio, sys
from policies.base import Delta, Table
from storage.redis.store import RedisStore

async def main(url: str, n: int) -> None:
    store = RedisStore.from_url(url, socket_timeout=5.0, connect_timeout=5.0)
    async def task(k: int) -> None:
        for i in range(n // 10):
            await store.apply([Delta(Table("agent-1"), "m", 1.0, 0.0), Delta(Table("*"), "m", 0, 1)])
    await asyncio.gather(*(task(k) for k in range(10)))
    assert store.pending == 0, store.pending
    await store.close()

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


async def test_two_processes_lose_no_update(redis_server: RedisServer, store: RedisStore) -> None:
    n = 1500
    procs = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", WRITER, redis_server.url, str(n))
        for _ in range(2)
    ]
    codes = [await p.wait() for p in procs]
    assert codes == [0, 0]
    snap = await store.load([AGENT, Table(POOLED)], ["m"])
    assert snap[AGENT]["m"] == Evidence(2 * n, 0)
    assert snap[Table(POOLED)]["m"] == Evidence(0, 2 * n)


class CountingConnection(redis.asyncio.Connection):
    """A real connection that counts the packed writes it sends (one per round trip)."""

    sends = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sends += 1
        await super().send_packed_command(command, check_health)


async def test_load_and_apply_are_one_round_trip_each(redis_server: RedisServer) -> None:
    pool = redis.asyncio.ConnectionPool.from_url(
        redis_server.url, connection_class=CountingConnection
    )
    store = RedisStore(redis.asyncio.Redis(connection_pool=pool))
    tables = [Table("a"), Table("a", "code"), Table(POOLED)]
    await store.apply([Delta(t, m, 1, 0) for t in tables for m in ("m", "n")])  # loads script
    await store.load(tables, ["m", "n", "o"])  # loads the read script
    CountingConnection.sends = 0
    await store.apply([Delta(t, m, 1, 0) for t in tables for m in ("m", "n")])
    assert CountingConnection.sends == 1
    snap = await store.load(tables, ["m", "n", "o"])
    assert CountingConnection.sends == 2
    assert snap[Table(POOLED)] == {"m": Evidence(2, 0), "n": Evidence(2, 0), "o": Evidence()}
    await store.close()


async def test_fresh_reads_are_reused_within_their_window_only(redis_server: RedisServer) -> None:
    """With fresh_s, a repeated read inside the window costs no round trip and returns the
    same snapshot; after the window, the next read sees the writes made meanwhile."""
    now = [100.0]
    pool = redis.asyncio.ConnectionPool.from_url(redis_server.url, connection_class=CountingConnection)
    store = RedisStore(redis.asyncio.Redis(connection_pool=pool), fresh_s=0.05, monotonic=lambda: now[0])
    tables = [Table("a"), Table(POOLED)]
    await store.apply([Delta(t, "m", 1, 0) for t in tables])
    first = await store.load(tables, ["m"])
    CountingConnection.sends = 0
    await store.apply([Delta(t, "m", 1, 0) for t in tables])  # writes go through at once
    now[0] += 0.049
    assert await store.load(tables, ["m"]) == first
    assert CountingConnection.sends == 1  # the apply only
    now[0] += 0.002
    later = await store.load(tables, ["m"])
    assert CountingConnection.sends == 2
    assert later[Table("a")]["m"] == Evidence(2, 0)
    assert await store.load(tables, ["other"]) != later  # another read is its own entry
    await store.close()


async def test_concurrent_reads_of_one_snapshot_share_one_round_trip(redis_server: RedisServer) -> None:
    """Requests asking for the same tables while a read is in flight await that read; a
    waiter cancelled meanwhile cancels nobody else's answer; other tables read on their own."""
    pool = redis.asyncio.ConnectionPool.from_url(redis_server.url, connection_class=CountingConnection)
    store = RedisStore(redis.asyncio.Redis(connection_pool=pool), fresh_s=0.05, monotonic=lambda: 0.0)
    tables = [Table("a"), Table(POOLED)]
    await store.apply([Delta(t, "m", 1, 0) for t in tables])
    await _warm(store, 8)
    CountingConnection.sends = 0
    leader = asyncio.ensure_future(store.load(tables, ["m"]))
    await asyncio.sleep(0)  # the leader's read is in flight
    followers = [asyncio.ensure_future(store.load(tables, ["m"])) for _ in range(5)]
    leaving = asyncio.ensure_future(store.load(tables, ["m"]))
    other = asyncio.ensure_future(store.load([Table("b")], ["m"]))
    await asyncio.sleep(0)
    leaving.cancel()
    answers = await asyncio.gather(leader, *followers)
    assert all(answer[Table("a")]["m"] == Evidence(1, 0) for answer in answers)
    assert (await other)[Table("b")]["m"] == Evidence()
    assert leaving.cancelled()
    assert CountingConnection.sends == 2  # one read for the six requests of (a, pooled), one for b
    await store.close()


async def test_without_fresh_reads_every_request_reads(redis_server: RedisServer) -> None:
    pool = redis.asyncio.ConnectionPool.from_url(redis_server.url, connection_class=CountingConnection)
    store = RedisStore(redis.asyncio.Redis(connection_pool=pool), fresh_s=0.0)
    await _warm(store, 8)
    CountingConnection.sends = 0
    await asyncio.gather(*(store.load([Table("a")], ["m"]) for _ in range(4)))
    assert CountingConnection.sends == 4
    await store.close()


async def _warm(store: RedisStore, connections: int) -> None:
    """Open ``connections`` pooled connections (a new one sends its handshake commands)."""
    await asyncio.gather(*(store.client.ping() for _ in range(connections)))
