"""Snapshot reads: one command per Cluster slot, against real Redis (single and Cluster)."""

from __future__ import annotations

import redis.asyncio
from redis.crc import key_slot
from support.redis_server import RedisServer
from support.redis_targets import RedisTarget

from policies.base import POOLED, Delta, Evidence, Table
from storage.redis import keys
from storage.redis.reads import ReadArgs
from storage.redis.store import RedisStore

AGENT_TABLES = [Table("a", "~recent:code"), Table("a"), Table(POOLED), Table("a", "code")]


def test_read_groups_are_one_per_slot_in_read_order_and_built_once() -> None:
    args = ReadArgs("mm", limit=2)
    models = ["m", "n"]
    built = args.of(AGENT_TABLES, models)
    names = [name.encode() for model in models for name in keys.fields(model)]
    hashes = [keys.post_key("mm", table).encode() for table in AGENT_TABLES]
    assert built == [((0, 1, 3), [hashes[0], hashes[1], hashes[3]], names), ((2,), [hashes[2]], names)]
    assert len({key_slot(h) for h in built[0][1]}) == 1
    assert args.of(list(AGENT_TABLES), tuple(models)) is built
    args.of([Table("b")], models)
    args.of([Table("c")], models)  # past the limit: starts over
    assert args.of(AGENT_TABLES, models) is not built and args.of(AGENT_TABLES, models) == built


async def test_a_read_answers_every_table_in_order(redis_target: RedisTarget) -> None:
    redis_target.flush()
    store = redis_target.store()
    deltas = [Delta(table, "m", i + 1, 0) for i, table in enumerate(AGENT_TABLES)]
    await store.apply(deltas)
    snap = await store.load(AGENT_TABLES, ["m", "n"])
    assert snap == {t: {"m": Evidence(i + 1, 0), "n": Evidence()} for i, t in enumerate(AGENT_TABLES)}
    await store.close()


async def test_a_wrong_type_hash_spoils_only_its_own_table(redis_target: RedisTarget) -> None:
    redis_target.flush()
    store = redis_target.store()
    await store.apply([Delta(table, "m", 1, 0) for table in AGENT_TABLES])
    with redis_target.client() as client:
        client.delete(keys.post_key("mm", AGENT_TABLES[1]))
        client.set(keys.post_key("mm", AGENT_TABLES[1]), "not a hash")
    snap = await store.load(AGENT_TABLES, ["m"])
    assert snap[AGENT_TABLES[1]] == {"m": Evidence()}
    assert all(snap[t] == {"m": Evidence(1, 0)} for t in AGENT_TABLES if t != AGENT_TABLES[1])
    assert store.corrupt_reads == 1
    await store.close()


async def test_the_read_script_is_loaded_again_after_script_flush(redis_target: RedisTarget) -> None:
    redis_target.flush()
    store = redis_target.store()
    await store.apply([Delta(table, "m", 0, 1) for table in AGENT_TABLES])
    assert (await store.load(AGENT_TABLES, ["m"]))[AGENT_TABLES[0]] == {"m": Evidence(0, 1)}
    with redis_target.client() as client:
        client.script_flush()
    snap = await store.load(AGENT_TABLES, ["m"])
    assert snap == {t: {"m": Evidence(0, 1)} for t in AGENT_TABLES}
    await store.close()


async def test_an_agents_tables_cost_one_command(redis_server: RedisServer) -> None:
    store = RedisStore.from_url(redis_server.url)
    raw = redis.asyncio.Redis.from_url(redis_server.url)
    await store.load(AGENT_TABLES, ["m"])  # loads the script
    await raw.config_resetstat()
    await store.load(AGENT_TABLES, ["m", "n"])
    stats = await raw.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == 1  # the agent's three hashes, in one script
    assert stats["cmdstat_hmget"]["calls"] == 3 + 1  # the script's, and the pool's own
    await raw.aclose()
    await store.close()

