"""tests/support/tcp_relay.py against a real redis-server: it relays, adds latency (not a
bandwidth cap), and a stopped Redis looks stopped through it."""

from __future__ import annotations

import time

import pytest
import redis
from support.redis_server import RedisServer
from support.tcp_relay import RelayThread

DELAY_S = 0.1


def _round_trip(client: redis.Redis) -> float:
    started = time.monotonic()
    assert client.ping()
    return time.monotonic() - started


def test_relay_adds_latency_both_ways_once_per_pipeline(own_redis_server: RedisServer) -> None:
    with RelayThread(own_redis_server.port) as relay, redis.Redis(port=relay.port) as client:
        client.set("k", "v")
        assert client.get("k") == b"v"
        relay.delay_s = DELAY_S
        assert _round_trip(client) >= 2 * DELAY_S  # there and back
        started = time.monotonic()
        with client.pipeline(transaction=False) as pipe:
            for _ in range(50):
                pipe.ping()
            assert all(pipe.execute())
        assert time.monotonic() - started < 25 * DELAY_S  # latency, not one delay per command
        relay.delay_s = 0.0
        assert client.get("k") == b"v"


def test_a_stopped_target_closes_relayed_connections(own_redis_server: RedisServer) -> None:
    with RelayThread(own_redis_server.port) as relay:
        client = redis.Redis(port=relay.port, socket_timeout=2)
        assert client.ping()
        own_redis_server.stop(hard=True)
        with pytest.raises(redis.ConnectionError):
            client.ping()
        own_redis_server.start()
        assert client.ping()  # a new connection through the same relay
        client.close()
