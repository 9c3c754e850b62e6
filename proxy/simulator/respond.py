"""Turning a profile into real HTTP behaviour: delays, errors, SSE, cuts, hangs, disconnects."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from proxy.simulator.profile import SimProfile
from proxy.simulator.reply import completion_body, error_body, plan_reply, stream_chunks
from proxy.simulator.state import SimState

Work = Callable[[Send], Awaitable[None]]
JSON_HEADERS = [(b"content-type", b"application/json")]
HTML_HEADERS = [(b"content-type", b"text/html")]
SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


async def run_until_disconnect(receive: Receive, work: Callable[[], Awaitable[None]]) -> bool:
    """Run ``work``, cancelling it if the client disconnects first; True when it finished.

    The request body must already be consumed: every further message is read as a
    possible ``http.disconnect``.
    """
    finished = False
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            group.cancel_scope.cancel()

        group.start_soon(watch)
        await work()
        finished = True
        group.cancel_scope.cancel()
    return finished


class SimResponse(Response):
    """A response driven by ``work(send)``; ``on_cancel()`` runs if the client goes away."""

    def __init__(self, work: Work, on_cancel: Callable[[], None]) -> None:
        super().__init__()
        self.work = work
        self.on_cancel = on_cancel

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the work under the disconnect watch."""
        if not await run_until_disconnect(receive, lambda: self.work(send)):
            self.on_cancel()


async def _sleep_ms(ms: float) -> None:
    """Sleep ``ms`` milliseconds (no-op for 0)."""
    if ms > 0:
        await anyio.sleep(ms / 1000)


async def send_body(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    """Send a complete response in one body message."""
    length = (b"content-length", str(len(body)).encode())
    await send({"type": "http.response.start", "status": status, "headers": [*headers, length]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


HTML_HEADERS = [(b"content-type", b"text/html")]


def html_error_page(status: int) -> bytes:
    """An nginx-style HTML error page for ``status``."""
    title = f"{status} Upstream Error"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>"
        "\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n"
    ).encode()


def _error_headers(profile: SimProfile) -> list[tuple[bytes, bytes]]:
    """JSON (or HTML) headers, plus Retry-After when the profile sets it."""
    base = HTML_HEADERS if profile.html_error else JSON_HEADERS
    if profile.retry_after_s is None:
        return base
    return [*base, (b"retry-after", f"{profile.retry_after_s:g}".encode())]


class Behaviour:
    """One request's behaviour: the chosen profile applied to the parsed body."""

    def __init__(self, state: SimState, profile: SimProfile, body: Mapping[str, Any]) -> None:
        self.state = state
        self.profile = profile
        self.body = body
        self.model = str(body.get("model", ""))
        self.stream = bool(body.get("stream"))

    def response(self) -> SimResponse:
        """The response object Starlette runs; counts the request."""
        self.state.count(self.model, "requests")
        return SimResponse(self.run, lambda: self.state.count(self.model, "cancelled"))

    async def run(self, send: Send) -> None:
        """Pick and perform the behaviour: hang, error, malformed, stream or JSON."""
        profile = self.profile
        if profile.hang:
            await anyio.sleep_forever()
        await _sleep_ms(profile.ttft_ms if self.stream else profile.latency_ms)
        if profile.context_window_error:
            await self.fail(send, 400, context_window=True)
        elif self.state.should_fail(profile):
            await self.fail(send, profile.error_status)
        elif self.stream:
            await self.send_stream(send)
        elif profile.malformed_json:
            await self.finish(send, 200, b"<html>this is not JSON {", "errors")
        elif profile.cut_body:
            await self.send_cut_body(send)
        else:
            await self.finish(send, 200, self.answer_body(), "completed")

    def answer_body(self) -> bytes:
        """The JSON answer (a chat completion here)."""
        return orjson.dumps(completion_body(self.reply()))

    def stream_frames(self) -> list[bytes]:
        """The SSE events of a streamed answer (chunks, then ``[DONE]``)."""
        events = [orjson.dumps(c) for c in stream_chunks(self.reply(), self.profile.chunks)]
        if self.profile.malformed_json:
            events.insert(1, b"{this is not JSON")
        return [b"data: " + event + b"\n\n" for event in [*events, b"[DONE]"]]

    def error_frame(self, sent: int) -> bytes:
        """The error event a stream ends with after ``sent`` events (OpenAI's chat shape)."""
        return b"data: " + orjson.dumps(error_body(500)) + b"\n\n"

    def reply(self) -> Any:
        """The planned answer (fresh id, current time)."""
        return plan_reply(self.profile, self.body, self.state.next_id(), int(time.time()), self.state.rng)

    async def fail(self, send: Send, status: int, *, context_window: bool = False) -> None:
        """Send an OpenAI-shaped error (or, with ``html_error``, a gateway's HTML page) and count it."""
        body = orjson.dumps(error_body(status, context_window=context_window))
        if self.profile.html_error:
            body = html_error_page(status)
        await send_body(send, status, body, _error_headers(self.profile))
        self.state.count(self.model, "errors")

    async def finish(self, send: Send, status: int, body: bytes, outcome: str) -> None:
        """Send a JSON-typed body and count ``outcome``."""
        await send_body(send, status, body, JSON_HEADERS)
        self.state.count(self.model, outcome)

    async def send_cut_body(self, send: Send) -> None:
        """Headers for the whole answer, half its bytes, then return: uvicorn drops the connection."""
        body = self.answer_body()
        length = (b"content-length", str(len(body)).encode())
        await send({"type": "http.response.start", "status": 200, "headers": [*JSON_HEADERS, length]})
        await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
        self.state.count(self.model, "errors")

    async def send_stream(self, send: Send) -> None:
        """Send the stream's events; or stop abruptly after ``cut_stream_after`` events, or end
        with an error event (``error_frame``) after ``error_event_after`` events."""
        profile = self.profile
        events = self.stream_frames()
        cut = profile.cut_stream_after
        cut = None if cut is None else min(cut, len(events) - 1)
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        for sent, event in enumerate(events):
            if sent == cut:
                self.state.count(self.model, "errors")
                return  # uvicorn closes the connection: the chunked body never terminates
            if sent == profile.error_event_after:
                await send({"type": "http.response.body", "body": self.error_frame(sent), "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                self.state.count(self.model, "errors")
                return
            if sent:
                await _sleep_ms(profile.chunk_interval_ms)
            if sent == profile.stall_stream_after:
                await _sleep_ms(profile.stall_ms)
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        self.state.count(self.model, "errors" if profile.malformed_json else "completed")
