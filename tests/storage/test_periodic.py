"""Periodic: ticks while started, none after stop, start and stop idempotent."""

from __future__ import annotations

import asyncio

from storage.periodic import Periodic


def test_ticks_until_stopped() -> None:
    async def scenario() -> tuple[int, int, int]:
        ticks = 0
        three = asyncio.Event()

        async def tick() -> None:
            nonlocal ticks
            ticks += 1
            if ticks == 3:
                three.set()

        periodic = Periodic(0.01, tick, "test-periodic")
        periodic.start()
        periodic.start()  # a second start does not add a second task
        tasks = sum(task.get_name() == "test-periodic" for task in asyncio.all_tasks())
        await asyncio.wait_for(three.wait(), 30)
        await periodic.stop()
        seen = ticks
        await asyncio.sleep(0.05)
        await periodic.stop()
        return tasks, seen, ticks

    tasks, seen, later = asyncio.run(scenario())
    assert tasks == 1
    assert seen >= 3 and later == seen


def test_stop_before_start_is_harmless() -> None:
    async def scenario() -> None:
        async def tick() -> None:
            raise AssertionError("never ticks")

        await Periodic(0.01, tick, "idle").stop()

    asyncio.run(scenario())
