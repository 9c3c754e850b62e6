"""Direct forwarding for OpenAI-wire upstreams: bytes relayed over a pooled aiohttp session.

Only what the outcome needs is read from the answer (status, usage, finish reason, text for
the quality heuristic); JSON bodies and SSE events go to the client as the upstream sent them.
Errors map to the same FailureKinds as the litellm path.
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
    error_reason,
    guarded,
    kind_for_status,
    retry_after_s,
    wants_usage,
    with_usage,
    without_html,
)
from proxy.forwarding.http_pool import (
    Call,
    PooledClient,
    first_event,
    open_within,
    read_body,
    redact,
    stream_cut,
    transport_error,
)
from proxy.forwarding.openai_wire import WireTarget
from proxy.forwarding.sse_events import DONE, DONE_DATA, event_data, sse_events


class DirectUpstream:
    """OpenAI chat completions and embeddings over one pooled aiohttp session (open between start
    and close)."""

    def __init__(self, targets: Mapping[str, WireTarget]) -> None:
        self._targets = dict(targets)
        self._client = PooledClient("DirectUpstream")

    def serves(self, arm: Arm) -> bool:
        return arm.name in self._targets

    async def start(self) -> None:
        await self._client.start()

    async def close(self) -> None:
        await self._client.close()

    async def complete(self, arm: Arm, body: dict[str, Any], timeout: float) -> Completion:
        target = self._targets[arm.name]
        async with self._post(target, body, stream=False, timeout=timeout) as response:
            raw = await read_ok(response, target, timeout)
        payload = _parse(raw, target)
        summary = Summary()
        summary.add_payload(payload)
        return Completion(raw, summary)

    async def embed(self, arm: Arm, body: dict[str, Any], timeout: float) -> bytes:
        """The upstream's embeddings JSON, relayed as it came."""
        target = self._targets[arm.name]
        data = orjson.dumps({**body, "model": target.model})
        call = self._client.post(target.embeddings_url, data, target.headers, timeout=timeout, stream=False)
        async with call as response:
            raw = await read_ok(response, target, timeout)
        payload = parse_quietly(raw)
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
            raise UpstreamError(FailureKind.BAD_RESPONSE, "upstream answered 200 with no embeddings")
        return raw

    async def open_stream(
        self, arm: Arm, body: dict[str, Any], *, first_chunk_timeout: float, timeout: float
    ) -> DirectStream:
        target = self._targets[arm.name]
        usage_body = {**body, "stream_options": with_usage(body)}
        context = self._post(target, usage_body, stream=True, timeout=timeout)
        stream = DirectStream(target, context, wants_usage(body))
        await open_within(stream, first_chunk_timeout, target.secrets)
        return stream

    def _post(self, target: WireTarget, body: dict[str, Any], *, stream: bool, timeout: float) -> Call:
        data = orjson.dumps({**body, "model": target.model, "stream": stream})
        return self._client.post(target.url, data, target.headers, timeout=timeout, stream=stream)


class DirectStream:
    """An upstream SSE stream relayed event by event."""

    def __init__(self, target: WireTarget, call: Call, wants_usage: bool) -> None:
        self._target, self._call = target, call
        self._wants_usage = wants_usage
        self._response: aiohttp.ClientResponse | None = None
        self._events: AsyncIterator[bytes] | None = None
        self.summary = Summary()
        self.first = b""
        self._done = False

    async def open(self) -> None:
        self._response = await self._call.__aenter__()
        if self._response.status != 200:
            await read_ok(self._response, self._target, None)
        self._events = self._relayed(sse_events(self._response.content.iter_any()))
        self.first = await first_event(self._events)

    def events(self) -> AsyncIterator[bytes]:
        assert self._events is not None
        return guarded(self._events, self._cut, self._tail)

    def _tail(self) -> tuple[bytes]:
        if not self._done:
            raise stream_cut("upstream stream ended without [DONE]")
        return (DONE,)

    def _cut(self, exc: Exception) -> UpstreamError:
        return stream_cut(transport_error(exc, self._target.secrets).message)

    async def _relayed(self, events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for event in events:
            data = event_data(event)
            if data is None:
                continue
            if data == DONE_DATA:
                self._done = True
                return
            if self._keep(_parse_event(data)):
                yield event

    def _keep(self, payload: Any) -> bool:
        if isinstance(payload, dict) and "error" in payload:
            raise stream_cut(f"upstream error event: {error_text(payload)[:300]}")
        self.summary.add_payload(payload)
        return bool(payload.get("choices")) or self._wants_usage if isinstance(payload, dict) else True

    async def aclose(self) -> None:
        if self._response is not None:
            self._response.close()


async def read_ok(response: aiohttp.ClientResponse, target: WireTarget, timeout: float | None) -> bytes:
    """The body of a 200 response; UpstreamError for any other status."""
    raw = await read_body(response, target.secrets)
    if response.status == 200:
        return raw
    text = redact(raw.decode("utf-8", "replace"), target.secrets)
    raise UpstreamError(
        kind_for_status(response.status, text),
        _message(response.status, error_text(parse_quietly(raw)), text),
        status=response.status,
        retry_after_s=retry_after_s(response.headers.get("retry-after")),
    )


def _message(status: int, reason: str, body: str) -> str:
    """The error's own message when the body is OpenAI-shaped, else a short reason (no HTML)."""
    if reason:
        return without_html(f"upstream HTTP {status}: {reason}", status)[:500]
    return f"upstream {error_reason(status, body)}"[:500]


def _parse(raw: bytes, target: WireTarget) -> dict[str, Any]:
    payload = parse_quietly(raw)
    if not isinstance(payload, dict) or not isinstance(payload.get("choices"), list):
        raise UpstreamError(
            FailureKind.BAD_RESPONSE, "upstream answered 200 with a body that is not a chat completion"
        )
    return payload


def _parse_event(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raise stream_cut("upstream sent an event that is not JSON") from None


def parse_quietly(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def error_text(payload: Any) -> str:
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or error)
    return str(error) if error else ""
