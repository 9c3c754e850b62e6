"""SSE relay: the first chunk is already in hand; later failures end in one error event."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Protocol

from proxy.forwarding.base import ChunkStream, FailureKind, Summary, UpstreamError
from proxy.pipeline.outcome import Attempt, Status
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


class Relay:
    """The body of one relayed stream: ``first``, every later frame, one error event if it breaks.

    However it ends (read to the end, broken upstream, or closed by its consumer before or
    during iteration) the attempt and the ending are recorded once, a stream left unread is
    released, and ``on_close`` runs once, after them. A broken upstream ends the body with
    ``failure_frame(error)`` (a chat error event by default).
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
        failure_frame: FailureFrame = chat_failure_frame,
    ) -> None:
        self._stream, self._log, self._model = stream, log, model
        self._failure_frame = failure_frame
        self._began, self._first_chunk_at = began, first_chunk_at
        self._on_close = on_close
        self._frames = self._relay()
        self._recorded = False
        self._closed = False

    @property
    def pending(self) -> Attempt:
        """The attempt being relayed, as of its first chunk (for the response headers)."""
        ttft = self._first_chunk_at - self._began
        return Attempt(self._model, None, ttft, ttft)

    def __aiter__(self) -> Relay:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self._frames.__anext__()
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Stop relaying; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._frames.aclose()
            if not self._recorded:
                self._record(FailureKind.CANCELLED)
                await self._stream.aclose()
        finally:
            self._on_close()

    async def _relay(self) -> AsyncGenerator[bytes, None]:
        try:
            yield self._stream.first
            async for frame in self._stream.events():
                yield frame
        except UpstreamError as error:
            self._record(error.kind, error.message)
            if frame := self._failure_frame(error):
                yield frame
            return
        self._record(None)

    def _record(self, failure: FailureKind | None, message: str = "") -> None:
        self._recorded = True
        self._log.attempted(
            self._model, self._began, failure, first_chunk_at=self._first_chunk_at, message=message
        )
        self._log.end(_status(failure), self._stream.summary)


def _status(failure: FailureKind | None) -> Status:
    if failure is None:
        return Status.SUCCESS
    return Status.CANCELLED if failure is FailureKind.CANCELLED else Status.STREAM_ERROR
