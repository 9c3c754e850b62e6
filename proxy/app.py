"""create_app: the Starlette app assembled in plain view; resources live in the lifespan."""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount

from proxy.config.keys import master_key
from proxy.config.settings import Config
from proxy.dashboard import dashboard_routes
from proxy.forwarding.base import Upstream
from proxy.http.admin import RestartWorkers, admin_routes, refreshing, reload_on_sighup
from proxy.http.auth import KeyMiddleware, KeyRing
from proxy.http.responses_routes import responses_routes
from proxy.http.routes import routes
from proxy.http.tracking_routes import tracking_routes
from proxy.pipeline.health import probing
from proxy.runtime.build import Runtime, open_runtime
from proxy.runtime.reload import Loader, Reloader
from proxy.runtime.state import State
from proxy.wire.errors import ProxyError, error_response

log = logging.getLogger("model_manager")


def create_app(
    config: Config,
    *,
    state: State | None = None,
    upstream: Upstream | None = None,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.time,
    reload_from: Loader | None = None,
    restart_workers: RestartWorkers | None = None,
) -> Starlette:
    """The proxy app. ``state`` defaults to ``open_state(config, clock)`` and ``upstream`` to
    the Forwarder, both started and closed with the app; a given ``upstream`` is the
    caller's to start and close, and has no pricing.

    ``reload_from`` (the config file's loader) enables ``POST /admin/reload`` and, in the main
    thread, SIGHUP (proxy.runtime.reload); ``restart_workers`` makes the endpoint restart every worker
    instead of reloading this process in place (``serve --workers N``)."""
    keys = key_ring(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_runtime(config, state=state, upstream=upstream, rng=rng, clock=clock) as runtime:
            publish(app, runtime)
            reloader = None if reload_from is None else Reloader(runtime, reload_from, partial(publish, app))
            app.state.reloader, app.state.restart_workers = reloader, restart_workers
            async with contextlib.AsyncExitStack() as reloading:
                if reloader is not None:
                    reloading.enter_context(reload_on_sighup(reloader))
                    await reloading.enter_async_context(refreshing(reloader, config))
                await reloading.enter_async_context(probing(lambda: runtime.services))
                yield

    return Starlette(
        routes=[
            *routes(),
            *admin_routes(),
            *responses_routes(),
            *tracking_routes(),
            *dashboard_routes(keys),
            *_simulator_mount(config),
        ],
        middleware=_middleware(keys),
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
        lifespan=lifespan,
    )


def publish(app: Starlette, runtime: Runtime) -> None:
    """Point the handlers at the runtime's current generation (one attribute swap each)."""
    app.state.runtime = runtime
    app.state.stored = runtime.state
    app.state.services, app.state.tracker = runtime.services, runtime.tracker
    app.state.embedder = runtime.embedder


def key_ring(config: Config) -> KeyRing:
    """The master key (when set) and the client keys; empty when the proxy needs no key."""
    master = config.server.master_key
    return KeyRing(((master_key(master),) if master is not None else ()) + config.keys)


def _middleware(keys: KeyRing) -> list[Middleware]:
    if not keys.keys:
        return []
    return [Middleware(KeyMiddleware, keys=keys, own_auth=("/dashboard",))]


def _simulator_mount(config: Config) -> list[Mount]:
    if config.simulator is None:
        return []
    from proxy.simulator.app import create_simulator_app
    from proxy.simulator.profile import profile_from_dict

    profiles = {name: profile_from_dict(fields) for name, fields in config.simulator.items()}
    return [Mount("/simulator", app=create_simulator_app(profiles))]


async def _http_error(request: Request, exc: Any) -> Response:
    status = exc.status_code
    code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
    return error_response(ProxyError(status, code, f"{request.method} {request.url.path}: {exc.detail}"))


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s", request.url.path)
    return error_response(ProxyError(500, "internal_error", "internal error in model-manager"))
