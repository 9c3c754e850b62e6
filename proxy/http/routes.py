"""Thin HTTP handlers: parse, delegate, shape the answer."""

from __future__ import annotations

import asyncio
import time

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from proxy.config.settings import Config
from proxy.forwarding.base import Embedder
from proxy.http import grants
from proxy.http.body import read_body, until_disconnect
from proxy.http.openapi import openapi_route
from proxy.pipeline.embeddings import handle_embeddings, parse_embeddings_request
from proxy.pipeline.flow import handle_chat
from proxy.pipeline.ready_counters import write_counters
from proxy.pipeline.request import parse_chat_request
from proxy.pipeline.services import Services
from proxy.runtime.state import State
from proxy.tracking.tracker import Tracker
from proxy.wire.errors import ProxyError, error_response
from proxy.wire.names import AUTO
from proxy.wire.sse_response import Reply


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def json_response(payload: object, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


async def chat_completions(request: Request) -> Reply:
    services = services_of(request)
    try:
        raw = await read_body(request, services.config.server.max_body_bytes)
        chat = parse_chat_request(raw, request.headers)
        grants.check_agent(request, chat.agent)
        grants.check_model(request, chat.model)
        chat = grants.limit_routing(request, services.agents.admit(chat), services.config)
        services.counters.requests += 1
        return await until_disconnect(request, handle_chat(services, chat))
    except ProxyError as error:
        return error_response(error)


async def embeddings(request: Request) -> Response:
    """``POST /v1/embeddings``: relayed to the named model or group (proxy.pipeline.embeddings)."""
    services = services_of(request)
    try:
        raw = await read_body(request, services.config.server.max_body_bytes)
        grants.check_model(request, _model_field(raw))
        parsed = parse_embeddings_request(raw, services.config)
        embedder: Embedder = request.app.state.embedder
        return await handle_embeddings(services, embedder, parsed)
    except ProxyError as error:
        return error_response(error)


async def list_models(request: Request) -> Response:
    created = int(time.time())
    names = grants.visible_models(request, _model_ids(services_of(request).config))
    data = [_model_object(name, created) for name in names]
    return json_response({"object": "list", "data": data})


async def retrieve_model(request: Request) -> Response:
    """``GET /v1/models/{id}``: one listed model, or 404 ``model_not_found`` (OpenAI's shape)."""
    config = services_of(request).config
    model = request.path_params["model"]
    if model in grants.visible_models(request, _model_ids(config)):
        return json_response(_model_object(model, int(time.time())))
    unavailable = model in config.unavailable
    why = "is configured but unavailable (see GET /ready)" if unavailable else "does not exist"
    return error_response(ProxyError(404, "model_not_found", f"model {model!r} {why}", param="model"))


def _model_field(raw: bytes) -> str | None:
    """The body's ``model`` when it is a string (the parser reports every other problem)."""
    try:
        model = orjson.loads(raw).get("model")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return model if isinstance(model, str) else None


def _model_ids(config: Config) -> tuple[str, ...]:
    """Models, then groups that are not model names, then ``auto``: what /v1/models lists."""
    return (*config.arms, *(g for g in config.groups if g not in config.arms), AUTO)


def _model_object(model: str, created: int) -> dict[str, object]:
    return {"id": model, "object": "model", "created": created, "owned_by": "model-manager"}


async def health(request: Request) -> Response:
    return json_response({"status": "ok"})


async def ready(request: Request) -> Response:
    services = services_of(request)
    store_ok = await services.store.ping()
    payload = {
        "status": "ready" if store_ok else "degraded",
        "store": type(services.store).__name__,
        "store_reachable": store_ok,
        "models": len(services.config.arms),
        "unavailable_models": dict(services.config.unavailable),
        "resting_models": services.cooldowns.resting_models(),
        "unhealthy_models": dict(services.unhealthy),
        "store_unavailable_reads": services.counters.store_unavailable_reads,
        "writes": write_counters(state_of(request).counters(), services.learner),
        "asyncio_tasks": len(asyncio.all_tasks()),
    }
    return json_response(payload, 200 if store_ok else 503)


def state_of(request: Request) -> State:
    """The app's storage (posterior store, tracking, shared usage), opened in the lifespan."""
    state: State = request.app.state.stored
    return state


def tracker_of(request: Request) -> Tracker:
    """The app's tracker (stats, workflows, feedback), set in the lifespan."""
    tracker: Tracker = request.app.state.tracker
    return tracker


def routes() -> list[Route]:
    return [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/embeddings", embeddings, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/models", list_models, methods=["GET"]),
        Route("/v1/models/{model:path}", retrieve_model, methods=["GET"]),
        Route("/models/{model:path}", retrieve_model, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        openapi_route(),
    ]
