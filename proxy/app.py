"""create_app: the Starlette app assembled in plain view; resources live in the lifespan."""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount

from proxy.config.settings import Config, ConfigError
from proxy.dashboard import dashboard_routes
from proxy.forwarding.base import Upstream, Usage
from proxy.http.auth import MasterKeyMiddleware
from proxy.http.responses_routes import responses_routes
from proxy.http.routes import routes
from proxy.http.tracking_routes import tracking_routes
from proxy.pipeline.cooldowns import Cooldowns
from proxy.pipeline.learning import CostFn, Learner, no_cost
from proxy.pipeline.router import Router
from proxy.pipeline.services import Services
from proxy.pipeline.usage_limits import UsageLimits
from proxy.state import State, open_state
from proxy.tracking.tracker import Tracker
from proxy.wire.errors import ProxyError, error_response

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from proxy.forwarding.forwarder import Forwarder
    from proxy.telemetry.tracing import Tracing

log = logging.getLogger("model_manager")


def create_app(
    config: Config,
    *,
    state: State | None = None,
    upstream: Upstream | None = None,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.time,
    span_exporter: SpanExporter | None = None,
) -> Starlette:
    """The proxy app. ``state`` defaults to ``open_state(config, clock)`` and ``upstream`` to
    the Forwarder, both started and closed with the app; a given ``upstream`` is the
    caller's to start and close, and has no pricing. With ``telemetry`` enabled, every
    request's spans go to ``span_exporter`` (default: OTLP as configured)."""
    router = Router(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stored = state or open_state(config, clock)
        forwarder = _forwarder(config)
        chat_upstream = upstream or forwarder
        cost = _pricing(config, forwarder) if chat_upstream is forwarder else no_cost
        services = _services(
            config, router, stored, upstream=chat_upstream, rng=rng or random.Random(), clock=clock, cost=cost
        )
        tracker = Tracker(stored.tracking, config=config, router=router, store=stored.posteriors, clock=clock)
        services.learner.batch_hooks.append(tracker.hook_many)
        tracing = _tracing(config, span_exporter)
        if tracing is not None:
            services.learner.hooks.append(tracing.hook)
        await stored.start()
        await forwarder.start()
        app.state.services, app.state.tracker, app.state.stored = services, tracker, stored
        app.state.embedder = forwarder
        for notice in config.notices:
            log.warning("config: LiteLLM key %s", notice)
        log.info("model-manager ready: %d models, policy %s", len(config.arms), config.router.policy)
        try:
            yield
        finally:
            await services.learner.drain()
            if tracing is not None:
                tracing.shutdown()
            await forwarder.close()
            await stored.close()

    return Starlette(
        routes=[
            *routes(),
            *responses_routes(),
            *tracking_routes(),
            *dashboard_routes(config.server.master_key),
            *_simulator_mount(config),
        ],
        middleware=_middleware(config),
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
        lifespan=lifespan,
    )


def _forwarder(config: Config) -> Forwarder:
    """The forwarding layer: chat (unless another upstream is given) and embeddings."""
    from proxy.forwarding.forwarder import Forwarder  # litellm is imported at start, not at import

    return Forwarder(config)


def _tracing(config: Config, exporter: SpanExporter | None) -> Tracing | None:
    """Request spans when telemetry is enabled (the SDK is imported only then)."""
    if not config.telemetry.enabled:
        return None
    try:
        from proxy.telemetry.tracing import Tracing
    except ModuleNotFoundError as exc:
        hint = "pip install 'model-manager[otel]'"
        raise ConfigError(f"telemetry.enabled: needs the OpenTelemetry packages ({hint}): {exc}") from exc
    log.info("telemetry: request spans to %s", "the given exporter" if exporter else "OTLP")
    return Tracing(config.telemetry, config.arms, exporter)


def _services(
    config: Config,
    router: Router,
    state: State,
    *,
    upstream: Upstream,
    rng: random.Random,
    clock: Callable[[], float],
    cost: CostFn,
) -> Services:
    propensity = config.router.propensity_samples > 0
    learner = Learner(router, state.posteriors, rng, propensity=propensity, cost=cost)
    limits = UsageLimits(shared=state.usage)
    return Services(
        config=config,
        router=router,
        store=state.posteriors,
        upstream=upstream,
        learner=learner,
        rng=rng,
        clock=clock,
        cooldowns=Cooldowns(shared=state.cooldowns),
        limits=limits,
    )


def _pricing(config: Config, forwarder: Forwarder) -> CostFn:
    """The forwarder's cost function by model name."""

    async def by_name(model: str, usage: Usage) -> float | None:
        return await forwarder.cost(config.arms[model], usage)

    return by_name


def _middleware(config: Config) -> list[Middleware]:
    if config.server.master_key is None:
        return []
    key = config.server.master_key
    return [Middleware(MasterKeyMiddleware, master_key=key, own_auth=("/dashboard",))]


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
