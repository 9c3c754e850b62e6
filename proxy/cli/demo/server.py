"""The demo's proxy: the real app under uvicorn in a background thread, on a pre-bound socket.

Binding first gives the port (``--port 0``: any free one) before the config is built, since
the simulated models are served by the proxy itself. Uvicorn installs no signal handlers
outside the main thread, so Ctrl-C stays with the demo.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import uvicorn
from starlette.applications import Starlette

STARTUP_TIMEOUT_S = 120.0
"""The app's startup imports litellm: seconds on a busy machine."""


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` (0: a free port), ready for uvicorn (OSError if taken)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    return sock


class DemoServer:
    """``app`` served on ``sock`` by uvicorn in a daemon thread; ``start()`` returns once it serves."""

    def __init__(self, app: Starlette, sock: socket.socket) -> None:
        self._sock = sock
        config = uvicorn.Config(
            app, loop="asyncio", lifespan="on", log_level="warning", timeout_graceful_shutdown=3
        )
        self._server = uvicorn.Server(config)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="model-manager-demo", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._server.serve(sockets=[self._sock]))
        except BaseException as exc:  # SystemExit when the lifespan fails
            self._error = exc

    def start(self) -> None:
        """Serve; RuntimeError when the app did not start within STARTUP_TIMEOUT_S."""
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the proxy did not start: {self._error!r}")
            time.sleep(0.05)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Shut down (the lifespan saves and closes), force it after ``timeout_s``, free the port."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout_s)
        self._sock.close()
