"""A lean HTTP/1.1 keep-alive client for load generation: asyncio protocols, no HTTP library.

A load generator written in Python must not take the CPU the proxy under test needs: aiohttp
costs some 600 us of CPU per request on this machine, this client under 100 us. It speaks just
what the proxy answers: a status line, headers, then a ``content-length`` body or a chunked
one (streams). ``Pool.request(head, body)`` sends on an idle connection (a new one when none
is idle) and returns ``(status, headers, body)``; headers are lower-cased names. A connection
the server closed is dropped from the pool; a request on it fails with ConnectionError. A
connection idle for ``IDLE_S`` is closed rather than reused: uvicorn closes keep-alive
connections idle for 5 s, and a request sent as it does so would be reset (a client-side race,
not a proxy failure).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import deque

Answer = tuple[int, dict[str, str], bytes]
IDLE_S = 3.0


class _Connection(asyncio.Protocol):
    """One connection, one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Answer] | None = None
        self._head: tuple[int, dict[str, str], int] | None = None
        self._chunks: list[bytes] = []
        self._scan = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's are not asyncio.Transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError(f"connection closed: {exc!r}"))

    def send(self, raw: bytes) -> asyncio.Future[Answer]:
        assert self.transport is not None
        self._buffer.clear()
        self._head, self._chunks, self._scan = None, [], 0
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return self._waiter

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._waiter is None or self._waiter.done():
            return
        try:
            answer = self._parse()
        except ValueError as exc:
            self._waiter.set_exception(ConnectionError(f"bad response: {exc}"))
            self.close()
            return
        if answer is not None:
            self._waiter.set_result(answer)

    def _parse(self) -> Answer | None:
        if self._head is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return None
            self._head = _head(bytes(self._buffer[:end]), end + 4)
            self._scan = end + 4
        status, headers, start = self._head
        length = headers.get("content-length")
        if length is not None:
            stop = start + int(length)
            return (status, headers, bytes(self._buffer[start:stop])) if len(self._buffer) >= stop else None
        if headers.get("transfer-encoding", "").lower() == "chunked":
            return self._chunked(status, headers)
        raise ValueError("neither content-length nor chunked")

    def _chunked(self, status: int, headers: dict[str, str]) -> Answer | None:
        buffer = self._buffer
        while True:
            line_end = buffer.find(b"\r\n", self._scan)
            if line_end < 0:
                return None
            size = int(bytes(buffer[self._scan : line_end]).split(b";")[0], 16)
            data_end = line_end + 2 + size
            if len(buffer) < data_end + 2:
                return None
            if size == 0:
                return status, headers, b"".join(self._chunks)
            self._chunks.append(bytes(buffer[line_end + 2 : data_end]))
            self._scan = data_end + 2

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _head(raw: bytes, body_start: int) -> tuple[int, dict[str, str], int]:
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ValueError(f"bad status line {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers, body_start


class Pool:
    """Keep-alive connections to ``host:port``, opened on demand, closed by ``close``."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._idle: deque[_Connection] = deque()
        self._all: set[_Connection] = set()

    async def _connection(self) -> _Connection:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and now - conn.idle_since < IDLE_S:
                return conn
            conn.close()
            self._all.discard(conn)
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(_Connection, self.host, self.port)
        self._all.add(conn)
        return conn

    async def request(self, head: bytes, body: bytes, timeout: float) -> Answer:
        """One request (``head`` ends with the blank line; content-length is added here)."""
        conn = await self._connection()
        raw = head[:-2] + b"content-length: %d\r\n\r\n" % len(body) + body
        try:
            answer = await asyncio.wait_for(conn.send(raw), timeout)
        except BaseException:
            conn.close()
            self._all.discard(conn)
            raise
        if answer[1].get("connection", "").lower() == "close":
            conn.close()
            self._all.discard(conn)
        else:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        return answer

    def close(self) -> None:
        for conn in self._all:
            conn.close()
        self._all.clear()
        self._idle.clear()


def request_head(path: str, host: str, headers: dict[str, str]) -> bytes:
    """A POST's request line and headers, ending with the blank line (no content-length)."""
    lines = [f"POST {path} HTTP/1.1", f"host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
