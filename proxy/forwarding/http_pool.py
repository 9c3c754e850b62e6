"""The pooled HTTP client both upstream paths send with, and its transport-error mapping."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Protocol

import aiohttp
from aiohttp.client_reqrep import ConnectionKey
from aiohttp.connector import Connection
from aiohttp.tracing import Trace

from proxy.forwarding.base import FailureKind, UpstreamError

KEEPALIVE_S = 60.0


class NewestFirstConnector(aiohttp.TCPConnector):
    """A TCPConnector that reuses its most recently released connection first.

    aiohttp reuses the oldest idle connection first: while traffic flows every connection a
    burst opened stays in rotation, none idles out, and the pool (its sockets) stays at the
    largest burst seen. Newest first leaves a burst's extra connections idle at the far end,
    where ``keepalive_timeout`` closes them.
    """

    async def _get(self, key: ConnectionKey, traces: list[Trace]) -> Connection | None:
        idle = self._conns.get(key)
        if isinstance(idle, deque) and len(idle) > 1:
            idle.rotate(1)
        return await super()._get(key, traces)


def pooled_session(keepalive_s: float = KEEPALIVE_S) -> aiohttp.ClientSession:
    """A session with an unbounded keep-alive pool, newest connection first (one idle for
    ``keepalive_s`` is closed), DNS cached 5 min, gzip decoded.

    Open it on the running loop (in ``start``) and close it in ``close``.
    """
    connector = NewestFirstConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=keepalive_s)
    return aiohttp.ClientSession(connector=connector, auto_decompress=True)


class PooledClient:
    """One pooled session (``pooled_session``), open between ``start`` and ``close``."""

    __slots__ = ("_owner", "_session")

    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = pooled_session()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def post(
        self, url: str, data: bytes, headers: Mapping[str, str], *, timeout: float, stream: bool
    ) -> Call:
        """A POST not yet sent (``async with`` it); RuntimeError before ``start``."""
        if self._session is None:
            raise RuntimeError(f"{self._owner} used before start()")
        limits = call_timeout(timeout, stream=stream)
        return Call(self._session.post(url, data=data, headers=headers, timeout=limits))


def call_timeout(timeout: float, *, stream: bool) -> aiohttp.ClientTimeout:
    """``timeout`` for connecting and for each read; for the whole call only when not streaming."""
    return aiohttp.ClientTimeout(total=None if stream else timeout, sock_connect=timeout, sock_read=timeout)


def transport_error(exc: BaseException, secrets: Sequence[str] = ()) -> UpstreamError:
    """A timeout or connection failure as an UpstreamError, ``secrets`` redacted (kept as is
    when it already is one)."""
    if isinstance(exc, UpstreamError):
        return exc
    kind = FailureKind.TIMEOUT if isinstance(exc, asyncio.TimeoutError) else FailureKind.CONNECTION
    return UpstreamError(kind, redact(f"{type(exc).__name__}: {exc}", secrets)[:500])


def redact(message: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        message = message.replace(secret, "[redacted]")
    return message


def stream_cut(message: str) -> UpstreamError:
    return UpstreamError(FailureKind.STREAM_CUT, message)


async def read_body(response: aiohttp.ClientResponse, secrets: Sequence[str] = ()) -> bytes:
    """The whole response body; raises UpstreamError on a transport failure."""
    try:
        return await response.read()
    except Exception as exc:
        raise transport_error(exc, secrets) from exc


class Call:
    """``async with`` around a request that maps transport errors to UpstreamError and
    releases the response on exit."""

    def __init__(self, request: Any) -> None:
        self._request = request
        self.response: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> aiohttp.ClientResponse:
        try:
            self.response = await self._request
        except Exception as exc:
            raise transport_error(exc) from exc
        return self.response

    async def __aexit__(self, *exc_info: object) -> None:
        if self.response is not None:
            self.response.release()


class Openable(Protocol):
    async def open(self) -> None: ...

    async def aclose(self) -> None: ...


async def open_within(stream: Openable, first_chunk_timeout: float, secrets: Sequence[str] = ()) -> None:
    """``stream.open()`` within ``first_chunk_timeout``; on any failure the stream is closed and
    the failure raised as UpstreamError (cancellation passes through)."""
    try:
        async with asyncio.timeout(first_chunk_timeout):  # no extra task, unlike wait_for
            await stream.open()
    except BaseException as exc:
        await stream.aclose()
        if isinstance(exc, UpstreamError | asyncio.CancelledError):
            raise
        raise transport_error(exc, secrets) from exc


async def first_event(events: AsyncIterator[bytes]) -> bytes:
    """The first item of ``events``; UpstreamError(BAD_RESPONSE) if there is none."""
    try:
        return await anext(events)
    except StopAsyncIteration:
        raise UpstreamError(FailureKind.BAD_RESPONSE, "upstream stream ended before any chunk") from None
