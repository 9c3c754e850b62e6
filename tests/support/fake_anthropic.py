"""A fake Anthropic Messages API (``POST /v1/messages``, JSON and SSE) as a raw ASGI app.

Served under a real uvicorn (``UvicornThread``) by the tests of the translated path. Each
model answers its queued ``Reply``s in order, then the default reply. Every request is
recorded (path, headers, body). Error replies carry Anthropic's error body and any headers.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

JSON_HEADERS = [(b"content-type", b"application/json")]
SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


@dataclass(frozen=True)
class Reply:
    """One planned answer. ``tool`` is (id, name, input); ``status`` != 200 is an error reply."""

    text: str = "Hello from the fake Anthropic."
    tool: tuple[str, str, dict[str, Any]] | None = None
    stop_reason: str = "end_turn"
    input_tokens: int = 11
    output_tokens: int = 7
    status: int = 200
    error_type: str = "api_error"
    error_message: str = "Internal server error"
    headers: dict[str, str] = field(default_factory=dict)
    cut_after: int | None = None
    """SSE: close the connection after this many events."""
    error_event_after: int | None = None
    """SSE: send an ``error`` event after this many events, then end."""
    interval_s: float = 0.0
    """SSE: pause between events."""


class FakeAnthropic:
    """The ASGI app and its test handle: ``queue`` replies, read ``requests``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queued: dict[str, list[Reply]] = {}
        self.requests: list[dict[str, Any]] = []

    def queue(self, model: str, *replies: Reply) -> None:
        with self._lock:
            self._queued.setdefault(model, []).extend(replies)

    def reset(self) -> None:
        with self._lock:
            self._queued.clear()
            self.requests.clear()

    def bodies(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r["body"] for r in self.requests]

    def _next(self, model: str) -> Reply:
        with self._lock:
            queued = self._queued.get(model)
            return queued.pop(0) if queued else Reply()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        body = orjson.loads(raw)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        with self._lock:
            self.requests.append({"path": scope["path"], "headers": headers, "body": body})
        reply = self._next(str(body.get("model")))
        if reply.status != 200:
            await _send(send, reply.status, orjson.dumps(error_body(reply)), _extra(reply))
        elif body.get("stream"):
            await _send_events(send, reply, str(body["model"]))
        else:
            await _send(send, 200, orjson.dumps(message_body(reply, str(body["model"]))), [])


def error_body(reply: Reply) -> dict[str, Any]:
    return {"type": "error", "error": {"type": reply.error_type, "message": reply.error_message}}


def _content(reply: Reply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
    if reply.tool is not None:
        tool_id, name, tool_input = reply.tool
        blocks.append({"type": "tool_use", "id": tool_id, "name": name, "input": tool_input})
    return blocks


def message_body(reply: Reply, model: str) -> dict[str, Any]:
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": _content(reply),
        "stop_reason": reply.stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens},
    }


def stream_events(reply: Reply, model: str) -> list[tuple[str, dict[str, Any]]]:
    """Anthropic's event sequence for ``reply``: text in word-sized deltas, tool input in two."""
    start = {**message_body(reply, model), "content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": reply.input_tokens, "output_tokens": 1}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start})
    ]
    for index, block in enumerate(_content(reply)):
        events += _block_events(index, block)
    delta = {"stop_reason": reply.stop_reason, "stop_sequence": None}
    events.append(
        (
            "message_delta",
            {"type": "message_delta", "delta": delta, "usage": {"output_tokens": reply.output_tokens}},
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def _block_events(index: int, block: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    if block["type"] == "text":
        opening = {"type": "text", "text": ""}
        words = block["text"].split(" ")
        deltas = [{"type": "text_delta", "text": w if i == 0 else " " + w} for i, w in enumerate(words)]
    else:
        opening = {**block, "input": {}}
        args = orjson.dumps(block["input"]).decode()
        half = len(args) // 2
        deltas = [{"type": "input_json_delta", "partial_json": part} for part in (args[:half], args[half:])]
    events = [
        ("content_block_start", {"type": "content_block_start", "index": index, "content_block": opening})
    ]
    events += [
        ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}) for d in deltas
    ]
    events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events


def _extra(reply: Reply) -> list[tuple[bytes, bytes]]:
    return [(k.encode(), v.encode()) for k, v in reply.headers.items()]


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": JSON_HEADERS + headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _send_events(send: Send, reply: Reply, model: str) -> None:
    events = stream_events(reply, model)
    if reply.error_event_after is not None:
        error = ("error", error_body(reply))
        events = [*events[: reply.error_event_after], error]
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
    for sent, (name, data) in enumerate(events):
        if sent == reply.cut_after:
            return  # uvicorn closes the connection: the chunked body never terminates
        if sent:
            await asyncio.sleep(reply.interval_s)
        frame = b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
        await send({"type": "http.response.body", "body": frame, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
