"""A TCP relay in front of a redis-server that can lose one script call or its reply.

    proxy = await LossyProxy(server.port).start()
    proxy.lose("reply")     # the next EVALSHA reaches Redis; its reply never comes back
    proxy.lose("request")   # the next EVALSHA never reaches Redis
    await proxy.close()

Losing goes deaf on that one connection (the client times out and drops it); other
connections, and later ones, relay normally. ``lost`` counts what was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

Loss = Literal["reply", "request"]


class LossyProxy:
    """Relays 127.0.0.1:``port`` to 127.0.0.1:``upstream_port``."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.lost = 0
        self._armed: Loss | None = None
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def lose(self, what: Loss) -> None:
        """Lose the next script call's ``what`` (once)."""
        self._armed = what

    async def start(self) -> LossyProxy:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            redis_r, redis_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_w.close()
            return
        deaf = {"request": False, "reply": False}
        await asyncio.gather(
            self._pipe(client_r, redis_w, deaf, "request"),
            self._pipe(redis_r, client_w, deaf, "reply"),
        )

    async def _pipe(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, deaf: dict[str, bool], side: Loss
    ) -> None:
        with contextlib.suppress(OSError):
            while data := await src.read(65536):
                if side == "request" and self._armed is not None and b"EVALSHA" in data.upper():
                    deaf[self._armed], self._armed = True, None
                    self.lost += 1
                if not deaf[side]:
                    dst.write(data)
                    await dst.drain()
        dst.close()
