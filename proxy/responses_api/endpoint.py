"""``POST /v1/responses`` as an adapter around the chat pipeline.

The Responses body is translated to a chat body (proxy.responses_api.request) and routed by
``proxy.pipeline.flow.handle_chat`` like any chat completion (candidates, policy, fallback,
learning, tracking, decision headers); its JSON answer is translated to a response object,
its SSE frames to Responses events. Errors keep the pipeline's OpenAI shape and headers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.responses import Response

from proxy.forwarding.sse_events import DONE_DATA, event_data
from proxy.pipeline.flow import handle_chat
from proxy.pipeline.request import ChatRequest, chat_request, json_object
from proxy.pipeline.services import Services
from proxy.responses_api.events import Event, StreamTranslator
from proxy.responses_api.reply import Envelope, to_response
from proxy.responses_api.request import to_chat_body
from proxy.wire.sse_response import Reply, SSEResponse

RESPONSE_ID_PREFIX = "resp_"
REPLACED_HEADERS = ("content-length", "content-type")


@dataclass(frozen=True, slots=True)
class ResponsesRequest:
    """A validated Responses request: the chat request the pipeline routes, and the echo."""

    chat: ChatRequest
    envelope: Envelope


def parse_responses_request(raw: bytes, headers: Mapping[str, str], now: float) -> ResponsesRequest:
    """Validate and translate; raises ProxyError (400) naming what is wrong."""
    body = json_object(raw)
    chat = chat_request(to_chat_body(body), headers)
    return ResponsesRequest(chat, Envelope(RESPONSE_ID_PREFIX + chat.request_id, int(now), body))


async def handle_responses(services: Services, request: ResponsesRequest) -> Reply:
    """Route through the chat pipeline; translate its answer (errors pass unchanged)."""
    reply = await handle_chat(services, services.agents.admit(request.chat))
    if isinstance(reply, SSEResponse):
        return reply.with_body(lambda frames: response_events(frames, StreamTranslator(request.envelope)))
    return _translated(reply, request.envelope)


def _translated(reply: Response, envelope: Envelope) -> Response:
    """A 200 chat completion as a response object; anything else (errors) as it is."""
    if reply.status_code != 200:
        return reply
    response = to_response(orjson.loads(reply.body), envelope)
    kept = {name: value for name, value in reply.headers.items() if name not in REPLACED_HEADERS}
    return Response(orjson.dumps(response), media_type="application/json", headers=kept)


async def response_events(frames: AsyncIterator[bytes], translator: StreamTranslator) -> AsyncIterator[bytes]:
    """The Responses events for a relayed chat SSE stream; closing this closes ``frames``."""
    try:
        async for frame in frames:
            for payload in chunk_payloads(frame):
                for event in _events(translator, payload):
                    yield encode(event)
    finally:
        await frames.aclose()  # type: ignore[attr-defined]


def _events(translator: StreamTranslator, payload: Any) -> list[Event]:
    if payload is DONE:
        return translator.finish()
    if "error" in payload:
        return translator.fail(payload["error"])
    return translator.feed(payload)


DONE = object()
"""Stands for the ``[DONE]`` event in chunk_payloads."""


def chunk_payloads(frame: bytes) -> list[Any]:
    """The JSON objects (or DONE) of the SSE events in one relayed frame; others are skipped."""
    payloads: list[Any] = []
    for event in frame.split(b"\n\n"):
        data = event_data(event)
        if data == DONE_DATA:
            payloads.append(DONE)
        elif data:
            try:
                payload = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue
            if isinstance(payload, dict):
                payloads.append(payload)
    return payloads


def encode(event: Event) -> bytes:
    """One SSE event, named by its type as OpenAI sends them."""
    kind: str = event["type"]
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"
