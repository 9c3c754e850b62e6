"""create_app: the Starlette app assembled in plain view; resources live in the lifespan."""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount

from policies.base import PosteriorStore
from proxy.config.settings import Config
from proxy.forwarding.base import Upstream, Usage
from proxy.http.auth import MasterKeyMiddleware
from proxy.http.routes import routes
from proxy.http.tracking_routes import tracking_routes
from proxy.pipeline.cooldowns import Cooldowns
from proxy.pipeline.learning import CostFn, Learner, no_cost
from proxy.pipeline.router import Router
from proxy.pipeline.services import Services
from proxy.pipeline.usage_limits import UsageLimits
from proxy.store_factory import build_store
from proxy.tracking import build_tracker
from proxy.wire.errors import ProxyError, error_response
from storage.redis.store import RedisStore
from storage.redis.usage_sync import SharedUsage

log = logging.getLogger("model_manager")


def create_app(
    config: Config,
    *,
    store: PosteriorStore | None = None,
    upstream: Upstream | None = None,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The proxy app. Anything not given is built from ``config`` when the app starts."""
    router = Router(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = _services(config, router, store=store, upstream=upstream, rng=rng, clock=clock)
        tracker = build_tracker(config, router, services.store, clock)
        services.learner.batch_hooks.append(tracker.hook_many)
        await _start(services.store, services.upstream, tracker, services.limits)
        app.state.services = services
        app.state.tracker = tracker
        log.info("model-manager ready: %d models, policy %s", len(config.arms), config.router.policy)
        try:
            yield
        finally:
            await services.learner.drain()
            await _close(services.upstream, tracker, services.limits, services.store)

    return Starlette(
        routes=[*routes(), *tracking_routes(), *_simulator_mount(config)],
        middleware=_middleware(config),
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
        lifespan=lifespan,
    )


def _services(
    config: Config,
    router: Router,
    *,
    store: PosteriorStore | None,
    upstream: Upstream | None,
    rng: random.Random | None,
    clock: Callable[[], float],
) -> Services:
    from proxy.forwarding.forwarder import Forwarder  # litellm is imported at start, not at import

    store = store or build_store(config, clock)
    rng = rng or random.Random()
    upstream = upstream or Forwarder(config)
    learner = Learner(
        router, store, rng, propensity=config.router.propensity_samples > 0, cost=_pricing(config, upstream)
    )
    limits = UsageLimits(shared=_shared_usage(config, store))
    return Services(
        config=config,
        router=router,
        store=store,
        upstream=upstream,
        learner=learner,
        rng=rng,
        clock=clock,
        cooldowns=Cooldowns(),
        limits=limits,
    )


def _pricing(config: Config, upstream: Upstream) -> CostFn:
    """The upstream's cost function by model name, or none if it has none."""
    cost = getattr(upstream, "cost", None)
    if cost is None:
        return no_cost

    async def by_name(model: str, usage: Usage) -> float | None:
        result: float | None = await cost(config.arms[model], usage)
        return result

    return by_name


def _shared_usage(config: Config, store: PosteriorStore) -> SharedUsage | None:
    """Cross-process rpm/tpm counts when there is Redis and some model has a limit."""
    limited = [name for name, arm in config.arms.items() if arm.rpm is not None or arm.tpm is not None]
    if not limited or not isinstance(store, RedisStore):
        return None
    return SharedUsage(
        store.client, limited, prefix=config.redis.prefix, interval_s=config.redis.usage_sync_s
    )


async def _start(*resources: object) -> None:
    for resource in resources:
        start = getattr(resource, "start", None)
        if start is not None:
            await start()


async def _close(*resources: object) -> None:
    for resource in resources:
        close = getattr(resource, "close", None)
        if close is not None:
            await close()


def _middleware(config: Config) -> list[Middleware]:
    if config.server.master_key is None:
        return []
    return [Middleware(MasterKeyMiddleware, master_key=config.server.master_key)]


def _simulator_mount(config: Config) -> list[Mount]:
    if config.simulator is None:
        return []
    from proxy.simulator.app import create_simulator_app
    from proxy.simulator.profile import SimProfile

    profiles = {name: SimProfile(**fields) for name, fields in config.simulator.items()}
    return [Mount("/simulator", app=create_simulator_app(profiles))]


async def _http_error(request: Request, exc: Any) -> Response:
    status = exc.status_code
    code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
    return error_response(ProxyError(status, code, f"{request.method} {request.url.path}: {exc.detail}"))


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s", request.url.path)
    return error_response(ProxyError(500, "internal_error", "internal error in model-manager"))
