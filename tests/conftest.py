"""Shared pytest fixtures. Redis fixtures start real redis-server processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from support.redis_server import RedisServer
from support.servers import FakeUpstream, UvicornThread

from proxy.simulator.app import create_simulator_app


@pytest.fixture(scope="session")
def _redis_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_server(_redis_session: RedisServer) -> Iterator[RedisServer]:
    """A redis-server shared by the session, emptied (FLUSHALL) before each test.

    Do not stop it; use ``own_redis_server`` for tests that stop or restart Redis.
    """
    _redis_session.start()
    with redis.Redis.from_url(_redis_session.url) as client:
        client.flushall()
    yield _redis_session


@pytest.fixture
def own_redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server for this test (may be stopped/restarted; AOF persistence on)."""
    with RedisServer(tmp_path / "redis", persistent=True) as server:
        yield server


@pytest.fixture(scope="session")
def _fake_upstream_session() -> Iterator[FakeUpstream]:
    """One simulator (seed 0) under a real uvicorn for the whole session."""
    with UvicornThread(create_simulator_app(seed=0)) as server:
        upstream = FakeUpstream(server.url)
        yield upstream
        upstream.close()


@pytest.fixture
def fake_upstream(_fake_upstream_session: FakeUpstream) -> FakeUpstream:
    """The shared simulator, reset (profiles, scripts, request log, stats, seed) for this test.

    ``.url`` is the OpenAI base URL (``http://127.0.0.1:PORT/v1``); ``.root`` has no ``/v1``.
    Unknown models answer with the default profile (fast, healthy).
    """
    _fake_upstream_session.reset()
    return _fake_upstream_session
