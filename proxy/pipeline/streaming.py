"""SSE relay: the first chunk is already in hand; a later failure is resumed by the next
model (proxy.pipeline.splice) when a ``resume`` is given, else it ends in one error event."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import orjson

from proxy.forwarding.base import ChunkStream, FailureKind, Summary, UpstreamError, Usage
from proxy.forwarding.sse_events import DONE, event_data
from proxy.pipeline.outcome import Attempt, Status
from proxy.pipeline.splice import (
    RESUMED_FIELD,
    Splice,
    ToolCallHold,
    broken_part,
    combined,
    partial_usage,
    summed,
)
from proxy.wire.errors import ProxyError, sse_error_event

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def chat_failure_frame(error: UpstreamError) -> bytes:
    """The error event a chat stream ends with when its upstream breaks."""
    return sse_error_event(ProxyError(502, "upstream_stream_error", error.message))


FailureFrame = Callable[[UpstreamError], bytes]
"""The last frame of a relayed stream whose upstream broke (empty: the stream wrote its own)."""


class StreamLog(Protocol):
    """Where the relay records its attempt and how the request ended (a Flight)."""

    def attempted(
        self,
        model: str,
        began: float,
        failure: FailureKind | None = None,
        *,
        first_chunk_at: float | None = None,
        message: str = "",
    ) -> None: ...

    def end(self, status: Status, summary: Summary | None = None) -> None: ...

    @property
    def attempts(self) -> Sequence[Attempt]: ...


@dataclass(frozen=True, slots=True)
class Resumed:
    """A continuation stream opened (its first chunk in hand) by ``model``, sent at ``began``;
    ``attempts``: the request's attempts so far, this one included."""

    model: str
    stream: ChunkStream
    began: float
    attempts: int


Resume = Callable[[str], Awaitable[Resumed | None]]
"""Opens a continuation of the partial text given; None when no model is left or time is up."""


class Relay:
    """The body of one relayed stream: ``first``, every later frame, one error event if it breaks.

    With ``resume``, a break is continued by the next model instead (proxy.pipeline.splice),
    and tool-call frames are held back until ``[DONE]`` so that a tool call is restarted,
    never spliced. However it ends (read to the end, broken upstream, or closed by its
    consumer before or during iteration) each attempt and the ending are recorded once, a
    stream left unread is released, and ``on_close`` runs once, after them. A break not
    resumed ends the body with ``failure_frame(error)`` (a chat error event by default).
    """

    def __init__(
        self,
        stream: ChunkStream,
        log: StreamLog,
        *,
        model: str,
        began: float,
        first_chunk_at: float,
        on_close: Callable[[], object],
        resume: Resume | None = None,
        wants_usage: bool = False,
        now: Callable[[], float] | None = None,
        failure_frame: FailureFrame = chat_failure_frame,
    ) -> None:
        self._stream, self._log, self._model = stream, log, model
        self._failure_frame = failure_frame
        self._began, self._first_chunk_at = began, first_chunk_at
        self._on_close = on_close
        self._resume, self._wants_usage, self._now = resume, wants_usage, now
        self._first_model = model
        self._splice = Splice(stream.first)
        self._hold = ToolCallHold() if resume is not None else None
        self._broken: list[Summary] = []
        """What each broken stream gave the answer (splice.broken_part)."""
        self._usages: list[Usage] = []
        self._attempts = 1
        self._delivered = False
        self._attempt_open = True
        """The current stream's attempt is not recorded yet."""
        self._frames = self._relay()
        self._recorded = False
        self._closed = False

    @property
    def pending(self) -> Attempt:
        """The attempt being relayed, as of its first chunk (for the response headers)."""
        ttft = self._first_chunk_at - self._began
        return Attempt(self._model, None, ttft, ttft)

    def __aiter__(self) -> AsyncIterator[bytes]:
        """The frames themselves (no wrapper per frame): however their iteration ends, the
        relay's finish runs at that end."""
        return self._frames

    async def __anext__(self) -> bytes:
        """The next frame, for callers holding the relay as an AsyncIterator itself."""
        return await self._frames.__anext__()

    async def aclose(self) -> None:
        """Stop relaying; idempotent. A relay never iterated is finished here."""
        await self._frames.aclose()
        await self._finish()

    async def _finish(self) -> None:
        """Once: record what was not (a cancel), release the stream, then ``on_close``."""
        if self._closed:
            return
        self._closed = True
        try:
            if not self._recorded:
                current = partial_usage(self._stream.summary) if self._attempt_open else None
                if self._attempt_open:
                    self._attempted(FailureKind.CANCELLED)
                self._end(Status.CANCELLED, current)
                await self._stream.aclose()
        finally:
            self._on_close()

    async def _relay(self) -> AsyncGenerator[bytes, None]:
        try:
            for out in self._out(self._stream.first):
                yield out
            while True:
                try:
                    async for frame in self._stream.events():
                        if self._passes_through(frame):
                            self._delivered = True
                            yield frame
                            continue
                        for out in self._out(frame):
                            yield out
                except UpstreamError as error:
                    if not await self._resumed(error):
                        self._end(Status.STREAM_ERROR)
                        if event := self._error_event(error):
                            yield event
                        return
                    for out in self._out(self._stream.first):
                        yield out
                    continue
                for out in self._hold.release() if self._hold is not None else ():
                    yield out
                self._attempted(None)
                self._end(Status.SUCCESS, self._stream.summary.usage)
                return
        finally:
            await self._finish()

    def _error_event(self, error: UpstreamError) -> bytes:
        """The one error event; once a resume was tried it also says how many attempts were made
        in all (the response headers, sent earlier, counted only the first)."""
        event = self._failure_frame(error)
        attempts = len(self._log.attempts)
        if self._resume is None or attempts <= 1 or not event:
            return event
        payload = orjson.loads(event_data(event) or b"{}")
        payload[RESUMED_FIELD] = {"resumed_from": self._first_model, "attempts": attempts}
        return b"data: " + orjson.dumps(payload) + b"\n\n"

    def _passes_through(self, frame: bytes) -> bool:
        """Whether ``_out(frame)`` is just ``[frame]`` (the common case, decided cheaply)."""
        return not self._broken and (self._hold is None or self._hold.passes_through(frame))

    def _out(self, frame: bytes) -> list[bytes]:
        """What to send the client for one upstream frame (spliced once resumed, tool calls held)."""
        frames = self._spliced(frame) if self._broken else [frame]
        if self._hold is not None:
            frames = [out for each in frames for out in self._hold.passed(each)]
        self._delivered = self._delivered or bool(frames)
        return frames

    def _spliced(self, frame: bytes) -> list[bytes]:
        """A continuation frame as part of the first answer; before ``[DONE]``, the final chunk."""
        if frame != DONE:
            spliced = self._splice.frame(frame, keep_role=not self._delivered)
            return [] if spliced is None else [spliced]
        usage = summed([*self._usages, self._stream.summary.usage])
        final = self._splice.final(
            self._first_model, self._model, self._attempts, usage if self._wants_usage else None
        )
        return [final, DONE]

    async def _resumed(self, error: UpstreamError) -> bool:
        """After ``error``: the broken attempt recorded and, when allowed, a continuation
        opened in its place (True)."""
        self._attempted(error.kind, error.message)
        self._broken.append(broken_part(self._stream.summary))
        self._usages.append(partial_usage(self._stream.summary))
        await self._stream.aclose()
        if self._resume is None or self._hold is None or not self._hold.spliceable:
            return False
        self._hold.drop()
        resumed = await self._resume("".join(part.text for part in self._broken))
        if resumed is None:
            return False
        self._stream, self._model, self._began = resumed.stream, resumed.model, resumed.began
        self._attempts, self._attempt_open = resumed.attempts, True
        self._first_chunk_at = self._now() if self._now is not None else resumed.began
        return True

    def _attempted(self, failure: FailureKind | None, message: str = "") -> None:
        self._attempt_open = False
        self._log.attempted(
            self._model, self._began, failure, first_chunk_at=self._first_chunk_at, message=message
        )

    def _end(self, status: Status, current: Usage | None = None) -> None:
        """The ending, with the answer's summary: the current stream's (``current`` its usage)
        after every broken part."""
        self._recorded = True
        if not self._broken or (current is None and len(self._broken) == 1):
            self._log.end(status, self._stream.summary)  # never resumed: the stream's own
            return
        parts, usages = list(self._broken), list(self._usages)
        if current is not None:
            parts.append(self._stream.summary)
            usages.append(current)
        self._log.end(status, combined(parts, usages))


def _status(failure: FailureKind | None) -> Status:
    if failure is None:
        return Status.SUCCESS
    return Status.CANCELLED if failure is FailureKind.CANCELLED else Status.STREAM_ERROR
