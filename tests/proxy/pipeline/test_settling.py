"""Settling: the watermark and in-flight waits behind Learner.settled()."""

from __future__ import annotations

import asyncio

from proxy.pipeline.settling import Settling


async def test_settled_waits_for_what_was_submitted_before_it_and_no_more() -> None:
    settling = Settling()
    await settling.settled()  # nothing submitted: returns at once
    settling.queued()
    settling.queued()
    waiter = asyncio.ensure_future(settling.settled())
    await asyncio.sleep(0)
    settling.queued()  # submitted after the call: not waited for
    settling.done(1, ["r1"])
    await asyncio.sleep(0)
    assert not waiter.done() and settling.waiting
    settling.done(1, ["r2"])
    await asyncio.wait_for(waiter, 1.0)
    assert not settling.waiting


async def test_a_request_in_flight_is_waited_for_until_it_settles() -> None:
    settling = Settling()
    settling.begin("r1")
    waiter = asyncio.ensure_future(settling.settled("r1"))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    settling.queued()
    settling.done(1, ["r1"])
    await asyncio.wait_for(waiter, 1.0)


async def test_a_request_that_never_settles_is_waited_for_at_most_wait_s() -> None:
    settling = Settling()
    settling.begin("stuck")
    await asyncio.wait_for(settling.settled("stuck", wait_s=0.01), 1.0)
    await asyncio.wait_for(settling.settled("unknown"), 1.0)  # not in flight: no wait


async def test_linger_sleeps_its_time_unless_a_reader_comes_and_then_ends_at_once() -> None:
    settling = Settling()
    loop = asyncio.get_running_loop()
    began = loop.time()
    await settling.linger(0.05)
    assert loop.time() - began >= 0.05  # nobody waiting: the whole linger
    settling.queued()
    lingering = asyncio.ensure_future(settling.linger(60.0))
    await asyncio.sleep(0)
    assert not lingering.done()
    reader = asyncio.ensure_future(settling.settled())
    await asyncio.wait_for(lingering, 1.0)  # the reader cut the 60 s short
    await asyncio.wait_for(settling.linger(60.0), 1.0)  # a reader still waits: no linger at all
    settling.done(1, ["r1"])
    await asyncio.wait_for(reader, 1.0)


async def test_a_cancelled_linger_leaves_no_timer_for_the_next_reader() -> None:
    settling = Settling()
    settling.queued()
    lingering = asyncio.ensure_future(settling.linger(60.0))
    await asyncio.sleep(0)
    lingering.cancel()
    await asyncio.gather(lingering, return_exceptions=True)
    reader = asyncio.ensure_future(settling.settled())
    await asyncio.sleep(0)
    assert not reader.done()  # the stale linger's future is gone, nothing resolved it
    settling.done(1, ["r1"])
    await asyncio.wait_for(reader, 1.0)
