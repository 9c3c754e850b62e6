"""Native Responses relay: ``POST {api_base}/responses`` to deployments that speak it.

The client's body goes as it came, ``model`` rewritten to the upstream's name; the answer (a
JSON ``response`` object, or SSE events) is relayed as the upstream sent it, and only what the
outcome needs is read (proxy.forwarding.responses_summary). HTTP and transport errors map to
the same FailureKinds as the chat paths (proxy.forwarding.direct.read_ok).

A stream counts as open at its first event after the preamble (``response.created`` /
``in_progress`` / ``queued``), so a failure event there still falls back to the next model.
A stream that breaks later ends with one ``response.failed`` event (unless the upstream sent
its own failure event) before the UpstreamError is raised: the client always sees a
Responses-shaped ending.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import orjson

from proxy.config.settings import Arm
from proxy.forwarding.base import (
    Completion,
    FailureKind,
    Summary,
    UpstreamError,
    guarded,
    kind_for_status,
)
from proxy.forwarding.direct import error_text, parse_quietly, read_ok
from proxy.forwarding.http_pool import (
    Call,
    PooledClient,
    open_within,
    stream_cut,
    transport_error,
)
from proxy.forwarding.openai_wire import WireTarget
from proxy.forwarding.responses_summary import TERMINAL_FAILED, TERMINAL_OK, fold_event, response_summary
from proxy.forwarding.sse_events import event_data, sse_events

PREAMBLE = frozenset({"response.created", "response.in_progress", "response.queued"})
"""Events sent before the model produced anything; the stream opens at the first other one."""
EVENT_KINDS = {FailureKind.CONTEXT_WINDOW, FailureKind.CONTENT_FILTER, FailureKind.CONFIG}


class ResponsesRelay:
    """Responses calls to the deployments in ``targets`` over one pooled session (open between
    start and close)."""

    def __init__(self, targets: Mapping[str, WireTarget]) -> None:
        self._targets = dict(targets)
        self._client = PooledClient("ResponsesRelay")

    def speaks_responses(self, arm: Arm) -> bool:
        return arm.name in self._targets

    async def start(self) -> None:
        await self._client.start()

    async def close(self) -> None:
        await self._client.close()

    async def respond(self, arm: Arm, body: dict[str, Any], timeout: float) -> Completion:
        """The upstream's ``response`` object, relayed as it came; UpstreamError otherwise."""
        target = self._targets[arm.name]
        async with self._post(target, body, stream=False, timeout=timeout) as response:
            raw = await read_ok(response, target, timeout)
        payload = parse_quietly(raw)
        if not isinstance(payload, dict) or not isinstance(payload.get("output"), list):
            raise UpstreamError(FailureKind.BAD_RESPONSE, "upstream answered 200 with no response object")
        if payload.get("status") == "failed":
            raise event_failure(f"upstream response failed: {error_text(payload)}")
        return Completion(raw, response_summary(payload))

    async def open_response_stream(
        self, arm: Arm, body: dict[str, Any], *, first_chunk_timeout: float, timeout: float
    ) -> NativeResponseStream:
        """A stream whose first event past the preamble has arrived."""
        target = self._targets[arm.name]
        stream = NativeResponseStream(target, self._post(target, body, stream=True, timeout=timeout))
        await open_within(stream, first_chunk_timeout, target.secrets)
        return stream

    def _post(self, target: WireTarget, body: dict[str, Any], *, stream: bool, timeout: float) -> Call:
        data = orjson.dumps({**body, "model": target.model, "stream": stream})
        return self._client.post(target.responses_url, data, target.headers, timeout=timeout, stream=stream)


class NativeResponseStream:
    """An upstream's Responses event stream, relayed event by event."""

    def __init__(self, target: WireTarget, call: Call) -> None:
        self._target, self._call = target, call
        self._response: aiohttp.ClientResponse | None = None
        self._events: AsyncIterator[bytes] | None = None
        self.summary = Summary()
        self.first = b""
        self._done = False
        self._failure: str | None = None
        self._snapshot: dict[str, Any] = {"object": "response", "output": []}
        self._sequence = -1
        self._last_kind: object = None

    async def open(self) -> None:
        self._response = await self._call.__aenter__()
        if self._response.status != 200:
            await read_ok(self._response, self._target, None)
        self._events = self._relayed(sse_events(self._response.content.iter_any()))
        self.first = await self._preamble()

    async def _preamble(self) -> bytes:
        """Every event up to the first one past the preamble; a failure there is raised."""
        assert self._events is not None
        frames = b""
        async for frame in self._events:
            frames += frame
            if self._failure is not None:
                raise event_failure(f"upstream response failed: {self._failure}")
            if self._last_kind not in PREAMBLE:
                return frames
        raise UpstreamError(FailureKind.BAD_RESPONSE, "upstream stream ended before any output")

    async def events(self) -> AsyncIterator[bytes]:
        """Events after ``first``; a break ends in one ``response.failed`` event, then raises."""
        assert self._events is not None
        try:
            async for event in guarded(self._events, self._cut):
                yield event
            if self._failure is not None:
                raise stream_cut(f"upstream response failed: {self._failure}")
            if not self._done:
                raise stream_cut("upstream stream ended before response.completed")
        except UpstreamError as error:
            if self._failure is None:
                yield self._failed_event(error.message)
            raise

    async def aclose(self) -> None:
        if self._response is not None:
            self._response.close()

    async def _relayed(self, events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """Each event as it came (comments skipped), read into the summary; stops at the end."""
        async for event in events:
            data = event_data(event)
            if data is None:
                continue
            payload = _parse_event(data)
            self._read(payload)
            yield event
            if self._done or self._failure is not None:
                return

    def _read(self, payload: dict[str, Any]) -> None:
        kind = payload.get("type")
        self._last_kind = kind
        fold_event(self.summary, payload)
        if isinstance(payload.get("sequence_number"), int):
            self._sequence = payload["sequence_number"]
        if isinstance(payload.get("response"), dict):
            self._snapshot = payload["response"]
        if kind in TERMINAL_OK:
            self._done = True
        elif kind in TERMINAL_FAILED:
            self._failure = (error_text(payload.get("response")) or _event_message(payload))[:300]

    def _failed_event(self, message: str) -> bytes:
        error = {"code": "server_error", "message": message}
        response = {**self._snapshot, "status": "failed", "error": error}
        event = {"type": "response.failed", "sequence_number": self._sequence + 1, "response": response}
        return b"event: response.failed\ndata: " + orjson.dumps(event) + b"\n\n"

    def _cut(self, exc: Exception) -> UpstreamError:
        return stream_cut(transport_error(exc, self._target.secrets).message)


def event_failure(message: str) -> UpstreamError:
    """A failure the upstream reported in a 200 answer: its kind read from the message
    (context window, content filter, model configuration), else a server error."""
    kind = kind_for_status(400, message)
    return UpstreamError(kind if kind in EVENT_KINDS else FailureKind.SERVER, message[:500])


def _parse_event(data: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise stream_cut("upstream sent an event that is not JSON") from None
    if not isinstance(payload, dict):
        raise stream_cut("upstream sent an event that is not a JSON object")
    return payload


def _event_message(payload: dict[str, Any]) -> str:
    """The message of an ``error`` event (``{type: error, code, message}``)."""
    return str(
        payload.get("message") or payload.get("code") or error_text(payload) or "upstream stream failed"
    )
