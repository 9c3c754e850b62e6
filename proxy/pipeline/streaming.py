"""SSE relay: the first chunk is already in hand; later failures end in one error event."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from proxy.config.settings import Arm
from proxy.forwarding.base import ChunkStream, FailureKind, UpstreamError
from proxy.pipeline.headers import response_headers
from proxy.pipeline.outcome import Attempt, Outcome, Status
from proxy.pipeline.services import Services
from proxy.wire.errors import ProxyError, sse_error_event
from proxy.wire.sse_response import SSEResponse

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def stream_response(
    services: Services,
    outcome: Outcome,
    arm: Arm,
    stream: ChunkStream,
    *,
    started: float,
    began: float,
) -> SSEResponse:
    """Headers now (the first chunk arrived), body relayed as it comes."""
    ttft = time.perf_counter() - began
    headers = {
        **SSE_HEADERS,
        **response_headers(
            outcome, started, time.perf_counter(), streaming_from=arm.name, first_chunk_s=ttft
        ),
    }
    return SSEResponse(_relay(services, outcome, arm, stream, began=began, ttft=ttft), headers)


async def _relay(
    services: Services, outcome: Outcome, arm: Arm, stream: ChunkStream, *, began: float, ttft: float
) -> AsyncIterator[bytes]:
    """Yield every frame; record the outcome exactly once however the stream ends."""
    failure: FailureKind | None = FailureKind.CANCELLED
    message = ""
    try:
        yield stream.first
        async for frame in stream.events():
            yield frame
        failure = None
    except UpstreamError as error:
        failure, message = error.kind, error.message
        yield sse_error_event(ProxyError(502, "upstream_stream_error", message))
    finally:
        if failure is FailureKind.CANCELLED:
            await stream.aclose()
        _finish(
            services, outcome, stream, Attempt(arm.name, failure, time.perf_counter() - began, ttft, message)
        )


def _finish(services: Services, outcome: Outcome, stream: ChunkStream, attempt: Attempt) -> None:
    outcome.attempts.append(attempt)
    outcome.summary = stream.summary
    outcome.latency_s = attempt.latency_s
    outcome.ttft_s = attempt.ttft_s
    if attempt.failure is None:
        outcome.status = Status.SUCCESS
    elif attempt.failure is FailureKind.CANCELLED:
        outcome.status = Status.CANCELLED
    else:
        outcome.status = Status.STREAM_ERROR
    services.learner.submit(outcome)
