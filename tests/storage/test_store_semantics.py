"""Behaviour every PosteriorStore shares, run against MemoryStore, RedisStore and the SQLite
database (each write committed, each read from a fresh store on the file)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from support.embedded_db import ThroughDatabase
from support.redis_targets import RedisTarget

from policies.base import POOLED, Delta, Evidence, PosteriorStore, Table
from storage.embedded.store import MemoryStore

try:
    from support.clocks import FakeClock
except ImportError:
    from tests.store_helpers import FakeClock

AGENT = Table("agent-1")
CODE = Table("agent-1", "code")
POOL = Table(POOLED)
Factory = Callable[..., Any]


@pytest.fixture(params=["memory", "redis", "redis-cluster", "sqlite"])
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Factory]:
    """Builds stores of the parametrized kind; all are closed at teardown."""
    made: list[Any] = []
    target = None
    if request.param == "redis":
        target = RedisTarget(request.getfixturevalue("redis_server").url, cluster=False)
    elif request.param == "redis-cluster":
        target = RedisTarget(request.getfixturevalue("redis_cluster").url, cluster=True)

    def factory(**kw: Any) -> Any:
        if request.param == "sqlite":
            store: Any = ThroughDatabase(tmp_path / f"state-{len(made)}.db", **kw)
        else:
            store = MemoryStore(**kw) if target is None else target.store(**kw)
        made.append(store)
        return store

    yield factory
    for store in made:
        await store.close()


async def test_round_trip_returns_every_requested_cell(make_store: Factory) -> None:
    store: PosteriorStore = make_store()
    await store.apply([Delta(AGENT, "m1", 1.0, 0.0), Delta(CODE, "m2", 0.25, 0.75)])
    await store.apply([Delta(AGENT, "m1", 0.5, 0.5)])
    snap = await store.load([AGENT, CODE, POOL], ["m1", "m2"])
    assert snap == {
        AGENT: {"m1": Evidence(1.5, 0.5), "m2": Evidence()},
        CODE: {"m1": Evidence(), "m2": Evidence(0.25, 0.75)},
        POOL: {"m1": Evidence(), "m2": Evidence()},
    }


async def test_model_names_with_colons_and_odd_scopes(make_store: Factory) -> None:
    store = make_store()
    odd = Table("team/a@b:c", "_all")
    await store.apply([Delta(odd, "ollama/llama3:8b", 2, 1), Delta(Table("x"), "m", 1, 0)])
    snap = await store.load([odd, Table("x", "")], ["ollama/llama3:8b", "m"])
    assert snap[odd] == {"ollama/llama3:8b": Evidence(2, 1), "m": Evidence()}
    assert snap[Table("x")] == {"ollama/llama3:8b": Evidence(), "m": Evidence(1, 0)}


async def test_updates_clamp_at_zero(make_store: Factory) -> None:
    store = make_store()
    await store.apply([Delta(AGENT, "m", 1.0, 2.0)])
    await store.apply([Delta(AGENT, "m", -5.0, -0.5)])
    assert (await store.load([AGENT], ["m"]))[AGENT]["m"] == Evidence(0.0, 1.5)
    await store.apply([Delta(AGENT, "new", -1.0, 3.0)])
    assert (await store.load([AGENT], ["new"]))[AGENT]["new"] == Evidence(0.0, 3.0)


async def test_decay_halves_per_half_life_on_read_and_write(make_store: Factory) -> None:
    clock = FakeClock(100.0)
    store = make_store(half_life_s=10.0, clock=clock)
    await store.apply([Delta(AGENT, "m", 4.0, 2.0)])
    clock.now = 110.0
    assert (await store.load([AGENT], ["m"]))[AGENT]["m"] == Evidence(2.0, 1.0)
    clock.now = 130.0
    assert (await store.load([AGENT], ["m"]))[AGENT]["m"] == Evidence(0.5, 0.25)
    await store.apply([Delta(AGENT, "m", 1.0, 0.0)])  # decays to 130 first, then adds
    clock.now = 140.0
    assert (await store.load([AGENT], ["m"]))[AGENT]["m"] == Evidence(0.75, 0.125)
    clock.now = 125.0  # a replica whose clock is behind the cell: no growth, no decay
    assert (await store.load([AGENT], ["m"]))[AGENT]["m"] == Evidence(1.5, 0.25)


async def test_decay_matches_formula_for_fractional_elapsed(make_store: Factory) -> None:
    clock = FakeClock(0.0)
    store = make_store(half_life_s=3600.0, clock=clock)
    await store.apply([Delta(AGENT, "m", 10.0, 5.0)])
    clock.now = 1234.5
    got = (await store.load([AGENT], ["m"]))[AGENT]["m"]
    k = 0.5 ** (1234.5 / 3600.0)
    assert got.successes == pytest.approx(10.0 * k, rel=1e-12)
    assert got.failures == pytest.approx(5.0 * k, rel=1e-12)


async def test_no_decay_without_half_life(make_store: Factory) -> None:
    clock = FakeClock(0.0)
    store = make_store(half_life_s=0, clock=clock)
    await store.apply([Delta(AGENT, "m", 3.0, 1.0)])
    clock.now = 1e9
    assert (await store.load([AGENT], ["m"]))[AGENT]["m"] == Evidence(3.0, 1.0)


async def test_non_finite_deltas_are_skipped_and_counted(make_store: Factory) -> None:
    store = make_store()
    await store.apply(
        [Delta(AGENT, "m", math.nan, 0.0), Delta(AGENT, "m", 1.0, math.inf), Delta(AGENT, "m", 1, 0)]
    )
    assert (await store.load([AGENT], ["m"]))[AGENT]["m"] == Evidence(1.0, 0.0)
    assert store.rejected_deltas == 2


async def test_concurrent_writers_lose_no_update(make_store: Factory) -> None:
    store = make_store()
    tasks, per_task = 50, 100

    async def writer(i: int) -> None:
        for j in range(per_task):
            reward = 1.0 if (i + j) % 4 == 0 else 0.0
            await store.apply([Delta(AGENT, "m", reward, 1.0 - reward), Delta(POOL, "m", 0.5, 0.5)])

    await asyncio.gather(*(writer(i) for i in range(tasks)))
    snap = await store.load([AGENT, POOL], ["m"])
    total = tasks * per_task
    assert snap[AGENT]["m"] == Evidence(total / 4, total * 3 / 4)
    assert snap[POOL]["m"] == Evidence(total / 2, total / 2)


async def test_dump_lists_every_table_decayed(make_store: Factory) -> None:
    clock = FakeClock(0.0)
    store = make_store(half_life_s=5.0, clock=clock)
    await store.apply([Delta(AGENT, "m1", 2, 2), Delta(CODE, "m2", 4, 0), Delta(POOL, "m1", 0, 8)])
    clock.now = 5.0
    assert await store.dump() == {
        "agent-1": {"": {"m1": Evidence(1, 1)}, "code": {"m2": Evidence(2, 0)}},
        POOLED: {"": {"m1": Evidence(0, 4)}},
    }


async def test_ping_answers(make_store: Factory) -> None:
    assert await make_store().ping() is True
