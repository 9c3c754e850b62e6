"""A real redis-server process for tests: free port, private temp dir, stop and restart.

Ports come from below the kernel's ephemeral range (32768+), so a client connection's source
port cannot take one between choosing it and redis-server binding it; a server whose port was
taken anyway starts again on another (only before its first start: a restart keeps its port).

    server = RedisServer(tmp_dir, persistent=True)
    server.start(); server.url; server.stop(); server.start()   # same port, same data dir

``persistent=True`` turns on appendonly (fsync always) so data survives stop/start;
otherwise nothing is saved. A missing redis-server binary raises (tests fail, never skip).
Use it as a context manager, or via the ``redis_server`` / ``own_redis_server`` fixtures.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

from support.running import Running

START_TIMEOUT_S = 10.0
PORT_TRIES = 5
BUS_OFFSET = 10_000
"""A cluster node also listens on its port + 10000 (the cluster bus)."""


def free_port() -> int:
    """A free port P in 10000..21999 whose cluster bus port P + 10000 is free too."""
    for _ in range(200):
        port = random.randrange(10_000, 22_000)
        if _free(port) and _free(port + BUS_OFFSET):
            return port
    raise RuntimeError("no free port pair for redis-server")


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def redis_binary() -> str:
    """Path of redis-server; raises RuntimeError (not skip) when it is missing."""
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if found is None:
        raise RuntimeError("redis-server not found: install the Debian package redis-server")
    return found


def ping(port: int, timeout: float = 0.5) -> bool:
    """Whether a Redis on 127.0.0.1:port answers PING with PONG."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer(Running):
    """One redis-server process bound to 127.0.0.1 on a fixed port and data dir."""

    def __init__(
        self,
        data_dir: Path,
        *,
        persistent: bool = False,
        port: int | None = None,
        extra_args: tuple[str, ...] = (),
    ):
        self.data_dir = data_dir
        self.persistent = persistent
        self.extra_args = extra_args
        self.port = port or free_port()
        self._may_move = port is None
        self.process: subprocess.Popen[bytes] | None = None
        data_dir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def command(self) -> list[str]:
        persist = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else []
        return [
            redis_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--save", "",
            "--appendonly", "no",
            *persist,
            "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
            *self.extra_args,
        ]  # fmt: skip

    def start(self) -> RedisServer:
        """Start (or restart) on the same port and dir; wait until PING answers."""
        if self.running:
            return self
        for _ in range(PORT_TRIES if self._may_move else 1):
            if self._launch():
                self._may_move = False
                return self
            if "Address already in use" not in self._log():
                break
            self.port = free_port()
        raise RuntimeError(f"redis-server did not start on {self.port}: {self._log()}")

    def _launch(self) -> bool:
        """Run redis-server; True once PING answers, False (process reaped) if it never does."""
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ping(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                return False
            time.sleep(0.02)
        return True

    def stop(self, *, hard: bool = False) -> None:
        """Stop the process (SIGTERM, or SIGKILL when ``hard``); always reaps it."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.kill() if hard else proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def _log(self) -> str:
        path = self.data_dir / "redis.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else "(no log)"

