"""Cost of PosteriorStore.load() and apply(): MemoryStore in process, SqliteStore (the embedded
default: reads from its mirror, writes buffered; plus the cost of one write-behind batch),
RedisStore on loopback.

Usage: python bench/bench_store.py [--n 5000]. Starts its own redis-server on a free port.
Shape of one call: 3 tables (agent, agent+context, pooled) x 4 candidate models; apply
writes 3 deltas (one model in each table), like one request's learning step.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from policies.base import POOLED, Delta, PosteriorStore, Table
from storage.embedded.database import Database
from storage.embedded.sqlite_store import SqliteStore
from storage.embedded.store import MemoryStore
from storage.redis.client import connect
from storage.redis.store import RedisStore

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.redis_server import RedisServer

TABLES = [Table("agent-1"), Table("agent-1", "code"), Table(POOLED, "code")]
MODELS = ["gpt-4o", "gpt-4o-mini", "claude-sonnet", "llama3:8b"]
DELTAS = [Delta(t, "gpt-4o", 0.8, 0.2) for t in TABLES]


async def per_call_us(fn: object, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await fn()  # type: ignore[operator]
    return (time.perf_counter() - start) / n * 1e6


async def bench(name: str, store: PosteriorStore, n: int) -> None:
    await store.apply(DELTAS)
    load = await per_call_us(lambda: store.load(TABLES, MODELS), n)
    apply = await per_call_us(lambda: store.apply(DELTAS), n)
    print(f"{name:<28} load {load:8.1f} us/call   apply {apply:8.1f} us/call")


def bench_sync(n: int) -> None:
    store = MemoryStore(half_life_s=3600.0)
    start = time.perf_counter()
    for _ in range(n):
        store.load_now(TABLES, MODELS)
    load = (time.perf_counter() - start) / n * 1e6
    start = time.perf_counter()
    for _ in range(n):
        store.apply_now(DELTAS)
    apply = (time.perf_counter() - start) / n * 1e6
    print(f"{'memory sync (evaluator)':<28} load {load:8.1f} us/call   apply {apply:8.1f} us/call")


async def bench_sqlite(n: int) -> None:
    """The request-path calls with the write-behind task running, then one batch's cost."""
    folder = Path(tempfile.mkdtemp(prefix="bench-sqlite-"))
    for half_life in (None, 3600.0):
        store = SqliteStore(Database(folder / f"hl-{half_life}.db"), half_life_s=half_life)
        await store.start()
        await bench(f"sqlite, hl={half_life}", store, n)
        await store.close()
    store = SqliteStore(Database(folder / "batch.db"), half_life_s=3600.0)
    cells = [Delta(Table(f"agent-{i}", "code"), m, 0.8, 0.2) for i in range(100) for m in MODELS]
    rounds = 50
    start = time.perf_counter()
    for _ in range(rounds):
        store.apply_now(cells)
        await store.flush()
    batch = (time.perf_counter() - start) / rounds * 1e3
    print(f"{'sqlite write-behind batch':<28} {batch:8.2f} ms per transaction of {len(cells)} cells "
          "(in a worker thread, off the request path)")
    await store.close()


async def bench_ping(url: str, n: int) -> None:
    client = connect(url, cluster=False, socket_timeout=1.0, connect_timeout=1.0)
    await client.ping()
    ping = await per_call_us(client.ping, n)
    print(f"{'redis loopback, bare PING':<28} {ping:8.1f} us/call (round-trip floor)")
    await client.aclose()


async def main(n: int) -> None:
    print(f"{len(TABLES)} tables x {len(MODELS)} models per load, {len(DELTAS)} deltas per apply")
    await bench("memory, no decay", MemoryStore(), n)
    await bench("memory, half-life 1h", MemoryStore(half_life_s=3600.0), n)
    bench_sync(n)
    await bench_sqlite(n)
    with RedisServer(Path(tempfile.mkdtemp(prefix="bench-redis-"))) as server:
        await bench_ping(server.url, max(1, n // 5))
        for half_life in (None, 3600.0):
            store = RedisStore.from_url(server.url, half_life_s=half_life)
            await bench(f"redis loopback, hl={half_life}", store, max(1, n // 5))
            await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=5000)
    asyncio.run(main(parser.parse_args().n))
