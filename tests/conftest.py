"""Shared pytest fixtures. Redis fixtures start real redis-server processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from support.redis_cluster import RedisClusterNodes
from support.redis_server import RedisServer
from support.redis_targets import RedisTarget
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


@pytest.fixture(scope="session")
def _redis_cluster_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterNodes]:
    with RedisClusterNodes(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield cluster


@pytest.fixture
def redis_cluster(_redis_cluster_session: RedisClusterNodes) -> RedisClusterNodes:
    """A Redis Cluster (three masters, three replicas) shared by the session, every master
    emptied before each test. Do not kill its nodes; start a private RedisClusterNodes for that."""
    RedisTarget(_redis_cluster_session.url, cluster=True).flush()
    return _redis_cluster_session


@pytest.fixture(params=["single", "cluster"])
def redis_target(request: pytest.FixtureRequest) -> RedisTarget:
    """Each kind of Redis in turn, emptied: the shared redis-server, then the shared cluster."""
    if request.param == "cluster":
        return RedisTarget(request.getfixturevalue("redis_cluster").url, cluster=True)
    return RedisTarget(request.getfixturevalue("redis_server").url, cluster=False)


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
