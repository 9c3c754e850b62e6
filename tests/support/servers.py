"""Real servers for tests: any ASGI app under uvicorn in a thread, the proxy as a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp

from support.running import Running

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _bound_socket() -> socket.socket:
    """A listening-ready socket bound to a free port (no race: uvicorn serves this socket)."""
    # IPPROTO_TCP (not 0) so asyncio sets TCP_NODELAY on accepted connections: otherwise a
    # response written in two parts waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((HOST, 0))
    return sock


class UvicornThread(Running):
    """Run an ASGI app under a real uvicorn.Server in a background thread.

    Usage: ``with UvicornThread(app) as server: httpx.get(server.url + "/path")``.
    Startup (lifespan included) is complete when ``__enter__`` returns. Uvicorn installs
    no signal handlers outside the main thread (Server.capture_signals checks).
    """

    def __init__(self, app: ASGIApp, *, startup_timeout: float = 10.0, **config: Any) -> None:
        self._sock = _bound_socket()
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://{HOST}:{self.port}"
        options: dict[str, Any] = {
            "loop": "asyncio",
            "lifespan": "on",
            "log_level": "warning",
            "timeout_graceful_shutdown": 2,
            **config,
        }
        self.server = uvicorn.Server(uvicorn.Config(app, **options))
        self._startup_timeout = startup_timeout
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"uvicorn-{self.port}", daemon=True)

    def _run(self) -> None:
        """Thread body: serve on the pre-bound socket in a fresh event loop."""
        try:
            asyncio.run(self.server.serve(sockets=[self._sock]))
        except BaseException as exc:  # SystemExit on lifespan failure included
            self._error = exc

    def start(self) -> None:
        """Start serving; returns once uvicorn reports started (RuntimeError otherwise)."""
        self._thread.start()
        deadline = time.monotonic() + self._startup_timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"uvicorn did not start on {self.url}: {self._error!r}")
            time.sleep(0.01)

    def stop(self, timeout: float = 5.0) -> None:
        """Ask uvicorn to exit, force it after ``timeout`` seconds, close the socket."""
        self.server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.server.force_exit = True
            self._thread.join(timeout)
        self._sock.close()



def _tail(path: Path, limit: int = 4000) -> str:
    """The last ``limit`` characters of a text file."""
    return path.read_text(errors="replace")[-limit:]


class ProxyProcess(Running):
    """Run ``python -m proxy serve --config FILE`` as a subprocess on a free port.

    ``env`` entries are added to the current environment (e.g. REDIS_URL). ``__enter__``
    waits for ``GET /health`` to answer 200; on failure the error carries the output tail.
    Startup includes ``import litellm`` (5-15 s on a busy 2-core machine), hence the timeout.
    """

    def __init__(
        self,
        config: str | os.PathLike[str],
        *,
        workers: int | None = None,
        env: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 60.0,
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.args = [sys.executable, "-m", "proxy", "serve", "--config", str(config)]
        self.args += ["--host", HOST, "--port", str(self.port)]
        self.args += ["--workers", str(workers)] if workers is not None else []
        self.args += list(extra_args)
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self.startup_timeout = startup_timeout
        handle, name = tempfile.mkstemp(prefix="proxy-", suffix=".log")
        os.close(handle)
        self.log_path = Path(name)
        self.process: subprocess.Popen[bytes] | None = None

    def output(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")

    def start(self) -> None:
        """Spawn the process in its own process group and wait for /health."""
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.args,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        """Poll /health until 200; stop and raise with the output tail otherwise."""
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                break
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        code = self.process.poll() if self.process else None
        self.stop()
        tail = _tail(self.log_path)
        raise RuntimeError(f"proxy not healthy on {self.url} (exit {code}):\n{tail}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``timeout`` seconds."""
        if self.process is None or self.process.poll() is not None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.process.wait(timeout)

    def _signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the process group (already gone is fine)."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        self.log_path.unlink(missing_ok=True)


class FakeUpstream:
    """Test handle on a running simulator: its URLs and a sync client for the control API."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.url = f"{root}/v1"
        self.client = httpx.Client(base_url=root, timeout=10.0)

    def _ok(self, response: httpx.Response) -> Any:
        """The JSON of a successful control response (raises on error status)."""
        response.raise_for_status()
        return response.json()

    def set_profile(self, model: str, **fields: Any) -> dict[str, Any]:
        """Set or replace ``model``'s profile (fields over SimProfile defaults)."""
        result: dict[str, Any] = self._ok(self.client.put(f"/_sim/profiles/{model}", json=fields))
        return result

    def set_default(self, **fields: Any) -> None:
        """Set the profile of models without one."""
        self._ok(self.client.put("/_sim/default_profile", json=fields))

    def script(self, model: str, steps: Sequence[Mapping[str, Any]]) -> int:
        """Queue one-shot steps for ``model``'s next requests; returns the queue length."""
        body = {"steps": [dict(s) for s in steps]}
        return int(self._ok(self.client.post(f"/_sim/script/{model}", json=body))["queued"])

    def requests(self) -> list[dict[str, Any]]:
        """Every API request received since the last reset, oldest first."""
        result: list[dict[str, Any]] = self._ok(self.client.get("/_sim/requests"))
        return result

    def bodies(self, path: str = "/v1/chat/completions") -> list[Any]:
        """The parsed bodies of the logged requests to ``path``."""
        return [r["body"] for r in self.requests() if r["path"].endswith(path)]

    def stats(self) -> dict[str, dict[str, int]]:
        """Per-model counters: requests, completed, errors, cancelled."""
        result: dict[str, dict[str, int]] = self._ok(self.client.get("/_sim/stats"))
        return result

    def reset(self) -> None:
        """Creation-time profiles and seed; empty log, scripts and stats."""
        self._ok(self.client.post("/_sim/reset"))

    def close(self) -> None:
        """Close the control client."""
        self.client.close()
