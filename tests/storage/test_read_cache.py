"""SharedReads: one read per snapshot in flight, whoever of its askers leaves; ReadCache: the
last good read per table, least recently read tables forgotten beyond its cell limit."""

from __future__ import annotations

import asyncio

import pytest

from policies.base import Snapshot, Table
from storage.redis.read_cache import ReadCache, ReadKey, SharedReads

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


def test_the_read_cache_answers_only_when_every_cell_is_known() -> None:
    cache = ReadCache(limit=10)
    a, b = Table("a"), Table("a", "code")
    cache.put(a, {"m1": (1.0, 0.0, 5.0), "m2": (0.0, 2.0, 6.0)})
    cache.put(b, {"m1": (3.0, 1.0, 7.0)})
    assert cache.get_all([a, b], ["m1"]) == {a: [(1.0, 0.0, 5.0)], b: [(3.0, 1.0, 7.0)]}
    assert cache.get_all([a, b], ["m1", "m2"]) is None  # b has no m2
    cache.put(b, {"m2": (0.0, 0.0, 8.0)})  # a later read adds to the table's cells
    assert cache.get_all([b], ["m2", "m1"]) == {b: [(0.0, 0.0, 8.0), (3.0, 1.0, 7.0)]}
    assert len(cache) == 4


def test_the_read_cache_forgets_the_least_recently_read_tables_beyond_its_limit() -> None:
    cache = ReadCache(limit=4)
    old, used, new = Table("old"), Table("used"), Table("new")
    cells = {"m1": (1.0, 0.0, 0.0), "m2": (1.0, 0.0, 0.0)}
    cache.put(old, cells)
    cache.put(used, cells)
    cache.put(old, cells)  # read again: now the most recent
    cache.put(new, cells)  # 6 cells > 4: the least recently read table goes
    assert cache.get_all([used], ["m1"]) is None
    assert cache.get_all([old, new], ["m1", "m2"]) is not None
    assert len(cache) == 4
