"""The pooled session shrinks back after a burst: a real aiohttp server counts its connections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from proxy.forwarding.http_pool import pooled_session

BURST = 10
KEEPALIVE_S = 0.3


async def _reply(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("sleep", "0")))
    return web.json_response({"ok": True})


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, web.Server]]:
    low = web.Server(_reply)
    runner = web.ServerRunner(low)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/", low
    await runner.cleanup()


async def _post(session: aiohttp.ClientSession, url: str) -> None:
    async with session.post(url, data=b"{}") as response:
        assert response.status == 200
        await response.read()


async def test_connections_opened_for_a_burst_close_while_traffic_flows(
    server: tuple[str, web.Server],
) -> None:
    url, low = server
    session = pooled_session(keepalive_s=KEEPALIVE_S)
    try:
        await asyncio.gather(*(_post(session, url + "?sleep=0.1") for _ in range(BURST)))
        assert len(low.connections) == BURST
        loop = asyncio.get_running_loop()
        until = loop.time() + 5 * KEEPALIVE_S
        while loop.time() < until:  # steady sequential traffic, every idle connection reusable
            await _post(session, url)
        await asyncio.sleep(0.05)
        assert len(low.connections) <= 2, "the burst's idle connections stayed open"
    finally:
        await session.close()
