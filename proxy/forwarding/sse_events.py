"""Splitting an upstream byte stream into whole SSE events, without re-encoding them."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

DONE_DATA = b"[DONE]"
DONE = b"data: [DONE]\n\n"
"""The frame that ends every stream relayed to a client."""


async def sse_events(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """Each complete event (ending in a blank line, LF or CRLF), normalised to end in b"\\n\\n".

    A trailing partial event (the connection cut mid-event) is dropped.
    """
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
        while True:
            end, width = _event_end(buffer)
            if end < 0:
                break
            yield buffer[:end] + b"\n\n"
            buffer = buffer[end + width :]


def event_data(event: bytes) -> bytes | None:
    """The joined ``data:`` field of one event, or None when it has none (a comment)."""
    parts = [line[5:].lstrip(b" ") for line in event.splitlines() if line.startswith(b"data:")]
    return b"\n".join(parts) if parts else None


def _event_end(buffer: bytes) -> tuple[int, int]:
    lf = buffer.find(b"\n\n")
    crlf = buffer.find(b"\r\n\r\n")
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return crlf, 4
    return lf, 2
