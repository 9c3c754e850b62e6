"""SharedReads: one read per snapshot in flight, whoever of its askers leaves."""

from __future__ import annotations

import asyncio

import pytest

from policies.base import Snapshot, Table
from storage.redis.read_cache import ReadKey, SharedReads

KEY: ReadKey = ((Table("a"),), ("m",))


class Reads:
    """Reads that answer (or fail) when the test releases them; counts the reads sent."""

    def __init__(self) -> None:
        self.sent = 0
        self.release = asyncio.Event()
        self.error: Exception | None = None

    async def read(self) -> Snapshot:
        self.sent += 1
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return {Table("a"): {}}


async def test_askers_meanwhile_share_the_first_read() -> None:
    shared, reads = SharedReads(), Reads()
    askers = [asyncio.ensure_future(shared.get(KEY, reads.read)) for _ in range(4)]
    await asyncio.sleep(0)
    reads.release.set()
    answers = await asyncio.gather(*askers)
    assert reads.sent == 1 and shared.shared == 3
    assert all(answer is answers[0] for answer in answers)


async def test_a_waiter_that_leaves_cancels_nobody_else() -> None:
    shared, reads = SharedReads(), Reads()
    first = asyncio.ensure_future(shared.get(KEY, reads.read))
    await asyncio.sleep(0)
    leaving, staying = (asyncio.ensure_future(shared.get(KEY, reads.read)) for _ in range(2))
    await asyncio.sleep(0)
    leaving.cancel()
    reads.release.set()
    assert (await first) == (await staying)
    assert leaving.cancelled() and reads.sent == 1


async def test_waiters_of_a_reader_that_left_read_again() -> None:
    shared, reads = SharedReads(), Reads()
    first = asyncio.ensure_future(shared.get(KEY, reads.read))
    await asyncio.sleep(0)
    waiters = [asyncio.ensure_future(shared.get(KEY, reads.read)) for _ in range(3)]
    await asyncio.sleep(0)
    first.cancel()
    for _ in range(100):
        if reads.sent == 2:
            break
        await asyncio.sleep(0)
    reads.release.set()
    answers = await asyncio.gather(*waiters)
    assert first.cancelled() and all(answer == {Table("a"): {}} for answer in answers)
    assert reads.sent == 2 and shared.shared == 2  # one reads again for the three


async def test_a_read_error_reaches_every_asker() -> None:
    shared, reads = SharedReads(), Reads()
    reads.error = ConnectionError("down")
    askers = [asyncio.ensure_future(shared.get(KEY, reads.read)) for _ in range(3)]
    await asyncio.sleep(0)
    reads.release.set()
    for asker in askers:
        with pytest.raises(ConnectionError):
            await asker
    assert reads.sent == 1


async def test_a_later_ask_reads_anew() -> None:
    shared, reads = SharedReads(), Reads()
    reads.release.set()
    await shared.get(KEY, reads.read)
    await shared.get(KEY, reads.read)
    assert reads.sent == 2 and shared.shared == 0
