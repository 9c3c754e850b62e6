"""make_store picks Redis when given a URL, else the embedded store."""

from __future__ import annotations

from pathlib import Path

from policies.base import Delta, Evidence, Table
from storage.embedded.store import MemoryStore
from storage.factory import make_store
from storage.redis.store import RedisStore

try:
    from support.redis_server import RedisServer
except ImportError:
    from tests.redis_server import RedisServer


async def test_redis_url_gives_shared_redis_store(redis_server: RedisServer) -> None:
    a = make_store(redis_url=redis_server.url, prefix="x")
    b = make_store(redis_url=redis_server.url, prefix="x")
    assert isinstance(a, RedisStore)
    await a.start()
    await a.apply([Delta(Table("t"), "m", 1, 0)])
    assert (await b.load([Table("t")], ["m"]))[Table("t")]["m"] == Evidence(1, 0)
    await a.close()
    await b.close()


async def test_no_url_gives_memory_store_with_state_file(tmp_path: Path) -> None:
    store = make_store(state_file=tmp_path / "s.json", half_life_s=60)
    assert isinstance(store, MemoryStore)
    await store.start()
    await store.apply([Delta(Table("t"), "m", 1, 0)])
    await store.close()
    assert (tmp_path / "s.json").stat().st_size > 0
