"""SSE relay: the first chunk is already in hand; a later failure is resumed by the next
model (proxy.pipeline.splice) when a ``resume`` is given, else it ends in one error event."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from proxy.forwarding.base import ChunkStream, FailureKind, Summary, UpstreamError, Usage
from proxy.forwarding.sse_events import DONE
from proxy.pipeline.outcome import Attempt, Status
from proxy.pipeline.splice import Splice, combined, partial_usage, resumable
from proxy.wire.errors import ProxyError, sse_error_event

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


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


@dataclass(frozen=True, slots=True)
class Resumed:
    """A continuation stream opened (its first chunk in hand) by ``model``, sent at ``began``."""

    model: str
    stream: ChunkStream
    began: float


Resume = Callable[[str], Awaitable[Resumed | None]]
"""Opens a continuation of the partial text given; None when no model is left or time is up."""


class Relay:
    """The body of one relayed stream: ``first``, every later frame, one error event if it breaks.

    However it ends (read to the end, broken upstream, or closed by its consumer before or
    during iteration) the attempt and the ending are recorded once, a stream left unread is
    released, and ``on_close`` runs once, after them.
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
    ) -> None:
        self._stream, self._log, self._model = stream, log, model
        self._began, self._first_chunk_at = began, first_chunk_at
        self._on_close = on_close
        self._resume, self._wants_usage, self._now = resume, wants_usage, now
        self._first_model = model
        self._splice = Splice(stream.first)
        self._summaries: list[Summary] = []
        self._usages: list[Usage] = []
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
        yield self._stream.first
        while True:
            try:
                async for frame in self._stream.events():
                    if self._summaries:
                        for spliced in self._spliced(frame):
                            yield spliced
                    else:
                        yield frame
            except UpstreamError as error:
                if not await self._resumed(error):
                    self._end(Status.STREAM_ERROR)
                    yield sse_error_event(ProxyError(502, "upstream_stream_error", error.message))
                    return
                for spliced in self._spliced(self._stream.first):
                    yield spliced
                continue
            self._record(None)
            return

    def _spliced(self, frame: bytes) -> list[bytes]:
        """A continuation frame as part of the first answer; before ``[DONE]``, the final chunk."""
        if frame != DONE:
            spliced = self._splice.frame(frame)
            return [] if spliced is None else [spliced]
        usages = [*self._usages, self._stream.summary.usage]
        usage = Usage(sum(u.prompt_tokens for u in usages), sum(u.completion_tokens for u in usages))
        return [
            self._splice.final(self._first_model, self._model, usage if self._wants_usage else None),
            DONE,
        ]

    async def _resumed(self, error: UpstreamError) -> bool:
        """After ``error``: the broken attempt recorded and, when allowed, a continuation
        opened in its place (True)."""
        self._log.attempted(
            self._model, self._began, error.kind, first_chunk_at=self._first_chunk_at, message=error.message
        )
        self._summaries.append(self._stream.summary)
        self._usages.append(partial_usage(self._stream.summary))
        await self._stream.aclose()
        if self._resume is None or not resumable(self._summaries):
            return False
        resumed = await self._resume("".join(summary.text for summary in self._summaries))
        if resumed is None:
            return False
        self._stream, self._model, self._began = resumed.stream, resumed.model, resumed.began
        self._first_chunk_at = self._now() if self._now is not None else resumed.began
        return True

    def _record(self, failure: FailureKind | None, message: str = "") -> None:
        self._log.attempted(
            self._model, self._began, failure, first_chunk_at=self._first_chunk_at, message=message
        )
        if failure is None and self._summaries:
            self._summaries.append(self._stream.summary)
            self._usages.append(self._stream.summary.usage)
        self._end(_status(failure))

    def _end(self, status: Status) -> None:
        self._recorded = True
        summary = combined(self._summaries, self._usages) if self._summaries else self._stream.summary
        self._log.end(status, summary)


def _status(failure: FailureKind | None) -> Status:
    if failure is None:
        return Status.SUCCESS
    return Status.CANCELLED if failure is FailureKind.CANCELLED else Status.STREAM_ERROR
