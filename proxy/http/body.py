"""Reading a request body with a size limit, and noticing when the client goes away."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from starlette.requests import Request
from starlette.responses import Response

from proxy.wire.disconnect import cancel_on_disconnect
from proxy.wire.errors import ProxyError
from proxy.wire.sse_response import Reply

CLIENT_CLOSED = 499


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body; ProxyError 413 past ``limit`` bytes (checked before reading it all)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def until_disconnect(request: Request, work: Awaitable[Reply]) -> Reply:
    """Run ``work`` in this task; cancel it (and so its upstream call) if the client leaves first."""
    current = asyncio.current_task()
    watcher = asyncio.ensure_future(cancel_on_disconnect(request.receive, current))
    try:
        return await work
    except asyncio.CancelledError:
        if not watcher.done() or current is None:
            raise  # cancelled from outside (shutdown), not by the client leaving
        current.uncancel()
        return Response(status_code=CLIENT_CLOSED)
    finally:
        watcher.cancel()


def _too_large(limit: int) -> ProxyError:
    return ProxyError(413, "request_too_large", f"request body exceeds {limit} bytes")
