"""Relayed chat SSE frames as Responses SSE events (the streaming half of the translation)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from proxy.forwarding.sse_events import DONE_DATA, event_data
from proxy.responses_api.events import Event, StreamTranslator

DONE = object()
"""Stands for the ``[DONE]`` event in chunk_payloads."""


def frame_events(translator: StreamTranslator, frame: bytes) -> bytes:
    """The encoded Responses events for one relayed chat frame (b"" when it makes none)."""
    return encode_all(event for payload in chunk_payloads(frame) for event in _events(translator, payload))


def _events(translator: StreamTranslator, payload: Any) -> list[Event]:
    if payload is DONE:
        return translator.finish()
    if "error" in payload:
        return translator.fail(payload["error"])
    return translator.feed(payload)


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


def encode_all(events: Iterable[Event]) -> bytes:
    return b"".join(encode(event) for event in events)


def encode(event: Event) -> bytes:
    """One SSE event, named by its type as OpenAI sends them."""
    kind: str = event["type"]
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"
