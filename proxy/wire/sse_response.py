"""A lean ASGI response for relaying SSE: one disconnect watcher, no task group.

Starlette's StreamingResponse runs the body and a disconnect listener in an anyio task group
on servers that speak ASGI < 2.4 (uvicorn does), which costs a task group and two tasks per
response. Here one watcher task cancels the relaying task when the client goes away, so an
upstream read stalled between chunks is abandoned at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from proxy.wire.disconnect import cancel_on_disconnect

SSE_MEDIA_TYPE = b"text/event-stream; charset=utf-8"


class SSEResponse:
    """Sends ``headers`` and then every chunk of ``body``; closes ``body`` however it ends."""

    def __init__(self, body: AsyncIterator[bytes], headers: Mapping[str, str]) -> None:
        self._body = body
        self._headers = [(b"content-type", SSE_MEDIA_TYPE)] + [
            (name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
        ]

    def with_body(self, transform: Callable[[AsyncIterator[bytes]], AsyncIterator[bytes]]) -> SSEResponse:
        """The same headers around ``transform(body)``; ``transform`` must close the body it
        was given when it is closed itself."""
        replaced = SSEResponse(transform(self._body), {})
        replaced._headers = self._headers
        return replaced

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        relay = asyncio.current_task()
        watcher = asyncio.ensure_future(cancel_on_disconnect(receive, relay))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self._headers})
            async for chunk in self._body:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not watcher.done() or relay is None:
                raise  # cancelled from outside (shutdown), not by the client leaving
            relay.uncancel()  # the client left: this response is simply over
        finally:
            watcher.cancel()
            with contextlib.suppress(Exception):
                await self._body.aclose()  # type: ignore[attr-defined]


Reply = Response | SSEResponse
"""What a chat handler answers with: a whole response, or a relayed stream."""
