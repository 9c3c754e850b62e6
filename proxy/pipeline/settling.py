"""Read-your-writes for one process: wait until what was submitted so far is learned from.

``Settling`` counts outcomes through the Learner's queue (submitted, then settled once their
store write and hooks ran, in submission order) and the request ids still in flight (decided,
not yet settled). A reader awaits ``settled()`` for everything submitted before the call, or
``settled(request_id)`` to also wait, bounded, for a request still in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

IN_FLIGHT_WAIT_S = 5.0
"""How long ``settled(request_id)`` waits for a request still in flight (e.g. a stream whose
``x-request-id`` the client read before the stream closed) before reading anyway."""


class Settling:
    """Submission watermarks and in-flight request ids; every method is loop-local and cheap."""

    def __init__(self) -> None:
        self.submitted = 0
        self.settled_through = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._in_flight: dict[str, asyncio.Event] = {}
        self._hurry: asyncio.Future[None] | None = None

    @property
    def waiting(self) -> bool:
        """Someone awaits a watermark (the writer should not linger)."""
        return bool(self._waiters)

    async def linger(self, seconds: float) -> None:
        """Sleep ``seconds``, or less: return as soon as someone awaits a watermark (at once
        if someone already does). One timer, however it ends."""
        if seconds <= 0 or self.waiting:
            return
        loop = asyncio.get_running_loop()
        hurry = self._hurry = loop.create_future()
        timer = loop.call_later(seconds, _resolve, hurry)
        try:
            await hurry
        finally:
            timer.cancel()
            self._hurry = None

    def begin(self, request_id: str) -> None:
        """``request_id`` was decided: its outcome will be submitted."""
        self._in_flight.setdefault(request_id, asyncio.Event())

    def queued(self) -> None:
        self.submitted += 1

    def done(self, count: int, request_ids: Iterable[str]) -> None:
        """``count`` more outcomes (these request ids), in submission order, are learned from."""
        self.settled_through += count
        for request_id in request_ids:
            event = self._in_flight.pop(request_id, None)
            if event is not None:
                event.set()
        ready = [future for target, future in self._waiters if target <= self.settled_through]
        self._waiters = [(t, f) for t, f in self._waiters if t > self.settled_through]
        for future in ready:
            _resolve(future)

    async def settled(self, request_id: str | None = None, *, wait_s: float = IN_FLIGHT_WAIT_S) -> None:
        """Return once every outcome submitted before the call is learned from; with
        ``request_id`` still in flight, first wait (at most ``wait_s``) until it is."""
        event = self._in_flight.get(request_id) if request_id is not None else None
        if event is not None:
            try:
                await asyncio.wait_for(event.wait(), wait_s)
            except TimeoutError:
                return
        target = self.submitted
        if target <= self.settled_through:
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((target, future))
        if self._hurry is not None:
            _resolve(self._hurry)
        await future


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
