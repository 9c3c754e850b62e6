"""A TCP relay on loopback that adds an adjustable latency in both directions.

    with RelayThread(redis.port) as relay:   # its own event loop in a daemon thread
        relay.url                           # redis://127.0.0.1:<relay port>/0
        relay.delay_s = 0.2                 # every byte arrives 200 ms later from now on

Latency, not a bandwidth cap: each chunk read is stamped and written once its time is due,
so a pipeline of many chunks is delayed once, not once per chunk. When the target refuses
or closes, the relay closes the client side too (a killed Redis looks killed).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Self

from support.running import Running

HOST = "127.0.0.1"


class TcpRelay:
    """Relays HOST:``port`` (0 = a free one, known after ``start``) to HOST:``target_port``."""

    def __init__(self, target_port: int, *, delay_s: float = 0.0) -> None:
        self.target_port = target_port
        self.delay_s = delay_s
        self.port = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    async def start(self) -> Self:
        self._server = await asyncio.start_server(self._accept, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        """Stop accepting and cut every relayed connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._relay(client_r, client_w)
        finally:
            self._tasks.discard(task)
            client_w.close()

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            target_r, target_w = await asyncio.open_connection(HOST, self.target_port)
        except OSError:
            return
        self.connections += 1
        try:
            await asyncio.gather(self._pipe(client_r, target_w), self._pipe(target_r, client_w))
        finally:
            target_w.close()

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        """Copy ``src`` to ``dst``, each chunk ``delay_s`` after it was read; close ``dst`` at EOF."""
        due: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        writer = asyncio.create_task(self._write_due(due, dst))
        try:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    due.put_nowait((time.monotonic() + self.delay_s, data))
            due.put_nowait((0.0, b""))
            await writer
        finally:
            writer.cancel()

    async def _write_due(self, due: asyncio.Queue[tuple[float, bytes]], dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while True:
                at, data = await due.get()
                if not data:
                    break
                if (wait := at - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                dst.write(data)
                await dst.drain()
        dst.close()


class RelayThread(Running):
    """A TcpRelay on its own event loop in a daemon thread (for synchronous callers)."""

    def __init__(self, target_port: int, *, delay_s: float = 0.0) -> None:
        self.relay = TcpRelay(target_port, delay_s=delay_s)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-relay", daemon=True)

    @property
    def url(self) -> str:
        return self.relay.url

    @property
    def port(self) -> int:
        return self.relay.port

    @property
    def delay_s(self) -> float:
        return self.relay.delay_s

    @delay_s.setter
    def delay_s(self, value: float) -> None:
        self.relay.delay_s = value  # a float store: read by the relay's loop, no lock needed

    def start(self) -> Self:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.relay.start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.relay.close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

