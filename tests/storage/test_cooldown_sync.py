"""429 cooldowns shared through Redis (single and Cluster): pushed at once, read back by every
process's sync, the longest rest wins, ended rests disappear; a failed sync keeps its rests."""

from __future__ import annotations

import asyncio

import pytest
from support.redis_server import free_port
from support.redis_targets import RedisTarget

from proxy.pipeline.cooldowns import Cooldowns
from storage.redis.client import connect
from storage.redis.cooldown_sync import SharedCooldowns


class Wall:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_a_rest_seen_by_one_process_reaches_the_others_at_their_next_sync(
    redis_target: RedisTarget,
) -> None:
    wall = Wall()
    clients = [connect(redis_target.url, cluster=redis_target.cluster, socket_timeout=2, connect_timeout=2)
               for _ in range(2)]
    here, there = (SharedCooldowns(c, interval_s=60, clock=wall) for c in clients)
    resting_here = Cooldowns(shared=here, wall=wall)
    resting_there = Cooldowns(shared=there, wall=wall)
    resting_here.rest("m1", 30.0)  # pushed by a background task, no sync needed here
    await asyncio.sleep(0)
    await here.close()  # waits for the push
    assert not resting_there.resting("m1")  # not synced yet
    await there.sync()
    assert resting_there.resting("m1") and not resting_there.resting("m2")
    assert there.until("m1") == wall.now + 30.0
    there.rest("m1", wall.now + 5.0)  # a shorter rest does not cut the longer one
    await there.close()
    await there.sync()
    assert there.until("m1") == wall.now + 30.0
    wall.now += 31.0
    assert not resting_there.resting("m1")
    await there.sync()
    assert there.until("m1") is None  # ended rests are dropped from Redis
    for client in clients:
        await client.aclose()


async def test_a_failed_sync_keeps_its_rests_to_push_later(caplog: pytest.LogCaptureFixture) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    client = connect(url, cluster=False, socket_timeout=0.2, connect_timeout=0.2)
    shared = SharedCooldowns(client)
    shared.rest("m1", 2e9)
    await shared.close()
    assert shared.failed_syncs == 1 and "cooldown sync failed" in caplog.text
    await shared.sync()
    assert shared.failed_syncs == 2  # tried again with the same rest
    await client.aclose()
