"""``POST /admin/reload``: re-read the config file (proxy.runtime.reload) on request.

With ``server.master_key`` set the master key middleware guards it (401 without the key);
without one only loopback clients may reload (403 otherwise). A config that does not
validate is a 400 naming the key path, and the running config keeps serving. Under
``serve --workers N`` the file is validated here, then uvicorn's supervisor is asked (SIGHUP)
to restart every worker, one at a time, each reading the file at start (202).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from proxy.config.discovery import has_wildcards
from proxy.config.settings import Config
from proxy.runtime.reload import Reloader, ReloadReport
from proxy.wire.errors import ProxyError, error_response

log = logging.getLogger("model_manager.reload")
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})

RestartWorkers = Callable[[], None]
"""Asks the process supervisor to restart every worker (``serve --workers N``)."""


async def reload_config(request: Request) -> Response:
    reloader: Reloader | None = request.app.state.reloader
    if reloader is None:
        return error_response(
            ProxyError(409, "reload_unavailable", "this proxy was not started from a config file")
        )
    if request.app.state.services.config.server.master_key is None and not _loopback(request):
        message = "POST /admin/reload without server.master_key is allowed from loopback clients only"
        return error_response(ProxyError(403, "forbidden", message))
    restart: RestartWorkers | None = request.app.state.restart_workers
    report = await (reloader.check() if restart is not None else reloader.reload())
    if report.error is not None:
        return error_response(rejected(report.error))
    if restart is not None:
        restart()
        return _json({**report.payload(), "reloaded": False, "restarting_workers": True}, 202)
    return _json(report.payload(), 200)


def rejected(error: str) -> ProxyError:
    """The 400 of a config that does not validate; ``param`` is the key path it names."""
    key_path = error.split(": ", 1)[0] if ": " in error else None
    message = f"config not reloaded (the running config keeps serving): {error}"
    return ProxyError(400, "invalid_config", message, param=key_path)


def _loopback(request: Request) -> bool:
    return request.client is not None and request.client.host in LOOPBACK


def _json(payload: object, status: int) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


def admin_routes() -> list[Route]:
    return [Route("/admin/reload", reload_config, methods=["POST"])]


@contextlib.contextmanager
def reload_on_sighup(reloader: Reloader) -> Iterator[None]:
    """While open, SIGHUP reloads this process in place (main thread only; else a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[ReloadReport]] = set()

    def on_hup() -> None:
        log.info("SIGHUP: reloading the config file")
        task = loop.create_task(reloader.reload())
        pending.add(task)
        task.add_done_callback(pending.discard)

    loop.add_signal_handler(signal.SIGHUP, on_hup)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGHUP)


@contextlib.asynccontextmanager
async def refreshing(reloader: Reloader, config: Config) -> AsyncIterator[None]:
    """While open, wildcard entries are listed again every ``server.discovery_interval_s``
    (when the config file has one and the interval is not 0)."""
    interval = config.server.discovery_interval_s
    if interval <= 0 or not has_wildcards(config.source):
        yield
        return
    task = asyncio.get_running_loop().create_task(reloader.refresh_every(interval))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
