"""The single-Redis client packs commands with hiredis: the same bytes as redis-py's own
packer, every URL scheme keeps its transport, and a real Redis answers through it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import redis.asyncio
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from storage.redis.client import (
    HiredisConnection,
    HiredisSSLConnection,
    HiredisUnixConnection,
    connect,
)

if TYPE_CHECKING:
    from support.redis_cluster import RedisClusterNodes
    from support.redis_server import RedisServer

COMMANDS: list[tuple[Any, ...]] = [
    ("SET", "key", "value"),
    ("CONFIG GET", "maxmemory"),
    (b"CLIENT PAUSE", 10),
    ("EVALSHA", "a" * 40, 2, "mm:{bot}:k1", b"mm:{bot}:k2", 0.1, 1e-7, -2.5, float("inf"), 2**70),
    ("HSET", "h", "ünïcødé", b"\x00\xff\r\n", bytearray(b"ba"), memoryview(b"mv")),
    ("SET", "k", ""),
]


def _python_packed(args: tuple[Any, ...]) -> bytes:
    return b"".join(Connection().pack_command(*args))


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: str(args[0]))
def test_hiredis_packs_the_bytes_redis_py_packs(args: tuple[Any, ...]) -> None:
    assert b"".join(HiredisConnection().pack_command(*args)) == _python_packed(args)


@pytest.mark.parametrize("bad", [None, True, object()])
def test_what_redis_py_refuses_is_a_data_error(bad: object) -> None:
    with pytest.raises(DataError):
        Connection().pack_command("SET", "k", bad)
    with pytest.raises(DataError, match="SET"):
        HiredisConnection().pack_command("SET", "k", bad)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6379/0", HiredisConnection),
        ("rediss://127.0.0.1:6380/0", HiredisSSLConnection),
        ("unix:///tmp/redis.sock", HiredisUnixConnection),
    ],
)
def test_every_scheme_keeps_its_transport(url: str, expected: type) -> None:
    client = connect(url, cluster=False, socket_timeout=0.25, connect_timeout=0.25)
    assert isinstance(client, redis.asyncio.Redis)
    kind = client.connection_pool.connection_class
    assert kind is expected
    assert issubclass(kind, expected.__mro__[2])


async def test_a_real_redis_answers_through_hiredis_packing(redis_server: RedisServer) -> None:
    client = connect(redis_server.url, cluster=False, socket_timeout=2.0, connect_timeout=2.0)
    try:
        async with client.pipeline(transaction=False) as pipe:
            pipe.hset("pack:h", mapping={"ünï": "1.5", "b": b"\x00\xff"})
            pipe.hmget("pack:h", ["ünï", "b"])
            replies = await pipe.execute()
        assert replies[1] == [b"1.5", b"\x00\xff"]
        assert await client.config_get("maxmemory") != {}
    finally:
        await client.delete("pack:h")
        await client.aclose()


async def test_a_real_cluster_answers_and_every_node_packs_with_hiredis(
    redis_cluster: RedisClusterNodes,
) -> None:
    client = connect(redis_cluster.url, cluster=True, socket_timeout=2.0, connect_timeout=2.0)
    try:
        async with client.pipeline(transaction=False) as pipe:
            for i in range(16):
                pipe.set(f"pack:{i}", f"ü{i}")
            await pipe.execute()
        assert await client.get("pack:7") == "ü7".encode()
        nodes = client.get_nodes()
        assert len(nodes) >= 3
        assert all(node.connection_class is HiredisConnection for node in nodes)
    finally:
        for i in range(16):
            await client.delete(f"pack:{i}")
        await client.aclose()
