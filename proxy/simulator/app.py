"""A simulated OpenAI-compatible upstream: the tests' fake provider and the keyless demo.

``create_simulator_app()`` serves ``POST /v1/chat/completions`` (JSON and SSE),
``POST /v1/responses`` (the Responses API, JSON and events), ``POST /v1/embeddings`` and
``GET /v1/models``; each request behaves as the profile of its
body's ``model`` says (see SimProfile). The control API under ``/_sim`` changes behaviour at run time:

- ``GET /_sim/profiles``; ``PUT /_sim/profiles/{model}`` (body: profile fields over the
  SimProfile defaults); ``DELETE /_sim/profiles/{model}``; ``PUT /_sim/default_profile``
- ``POST /_sim/script/{model}`` ``{"steps": [fields, ...]}``: one-shot behaviours for the
  model's next requests, in order, each step's fields over the model's current profile
- ``GET /_sim/requests`` / ``DELETE /_sim/requests``: log of received API requests
- ``GET /_sim/stats``: per model requests, completed, errors, cancelled
- ``POST /_sim/reset``: back to the creation-time profiles and seed, log/scripts/stats empty
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import anyio
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from proxy.simulator.embeddings import embeddings_body, inputs_of
from proxy.simulator.profile import SimProfile, profile_from_dict, profile_to_dict
from proxy.simulator.reply import error_body
from proxy.simulator.respond import Behaviour
from proxy.simulator.responses import ResponsesBehaviour
from proxy.simulator.state import SimState

__all__ = ["SimProfile", "create_simulator_app"]


def _json(data: Any, status: int = 200) -> Response:
    """An orjson-encoded JSON response."""
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _state(request: Request) -> SimState:
    """The simulator state of the app serving ``request``."""
    state: SimState = request.app.state.sim
    return state


async def _parsed_body(request: Request) -> Any:
    """The request body as JSON, or None when it is empty or not JSON."""
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return None


async def _log_request(request: Request) -> Any:
    """Append the request to the log; returns its parsed body."""
    body = await _parsed_body(request)
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers.raw}
    entry = {"method": request.method, "path": request.url.path, "headers": headers, "body": body}
    _state(request).requests.append(entry)
    return body


async def chat_completions(request: Request) -> Response:
    """OpenAI chat completions, behaving as the requested model's profile says."""
    body = await _log_request(request)
    if not isinstance(body, dict):
        return _json(error_body(400), 400)
    state = _state(request)
    return Behaviour(state, state.next_profile(str(body.get("model", ""))), body).response()


async def responses(request: Request) -> Response:
    """The OpenAI Responses API, behaving as the requested model's profile says."""
    body = await _log_request(request)
    if not isinstance(body, dict):
        return _json(error_body(400), 400)
    state = _state(request)
    return ResponsesBehaviour(state, state.next_profile(str(body.get("model", ""))), body).response()


async def embeddings(request: Request) -> Response:
    """OpenAI embeddings; the model's profile decides latency and errors (streams do not apply)."""
    body = await _log_request(request)
    inputs = inputs_of(body) if isinstance(body, dict) else None
    if not isinstance(body, dict) or inputs is None:
        return _json(error_body(400), 400)
    state = _state(request)
    model = str(body.get("model", ""))
    profile = state.next_profile(model)
    state.count(model, "requests")
    await anyio.sleep(profile.latency_ms / 1000)
    if state.should_fail(profile):
        state.count(model, "errors")
        return _json(error_body(profile.error_status), profile.error_status)
    state.count(model, "completed")
    return _json(embeddings_body(model, inputs, body.get("encoding_format")))


async def list_models(request: Request) -> Response:
    """OpenAI model list of the models with a profile."""
    await _log_request(request)
    now = int(time.time())
    data = [
        {"id": m, "object": "model", "created": now, "owned_by": "simulator"}
        for m in _state(request).profiles
    ]
    return _json({"object": "list", "data": data})


async def _fields(request: Request) -> dict[str, Any]:
    """The JSON object body of a control request (ValueError otherwise)."""
    body = await _parsed_body(request)
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    return body


async def get_profiles(request: Request) -> Response:
    """All standing profiles, plus the default under ``"*"``."""
    state = _state(request)
    profiles = {m: profile_to_dict(p) for m, p in state.profiles.items()}
    return _json({**profiles, "*": profile_to_dict(state.default)})


async def put_profile(request: Request) -> Response:
    """Set or replace one model's profile."""
    profile = profile_from_dict(await _fields(request))
    _state(request).profiles[request.path_params["model"]] = profile
    return _json(profile_to_dict(profile))


async def delete_profile(request: Request) -> Response:
    """Forget one model's profile (it falls back to the default)."""
    _state(request).profiles.pop(request.path_params["model"], None)
    return _json({"ok": True})


async def put_default_profile(request: Request) -> Response:
    """Set the profile of models without one."""
    profile = profile_from_dict(await _fields(request))
    _state(request).default = profile
    return _json(profile_to_dict(profile))


async def post_script(request: Request) -> Response:
    """Queue one-shot steps for a model's next requests."""
    model, state = request.path_params["model"], _state(request)
    steps = (await _fields(request)).get("steps")
    if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
        raise ValueError("'steps' must be a list of profile objects")
    base = state.profile_for(model)
    queued = state.enqueue(model, [profile_from_dict(s, base) for s in steps])
    return _json({"queued": queued})


async def get_requests(request: Request) -> Response:
    """Every logged API request, oldest first."""
    return _json(_state(request).requests)


async def delete_requests(request: Request) -> Response:
    """Clear the request log."""
    _state(request).requests.clear()
    return _json({"ok": True})


async def get_stats(request: Request) -> Response:
    """Per-model counters."""
    return _json(_state(request).stats)


async def post_reset(request: Request) -> Response:
    """Restore the creation-time state."""
    _state(request).reset()
    return _json({"ok": True})


async def _bad_control_request(request: Request, exc: Exception) -> Response:
    """Control-API validation errors become 422 with the message."""
    return _json({"error": str(exc)}, 422)


def _routes() -> list[Route]:
    """The API and control routes."""
    return [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/responses", responses, methods=["POST"]),
        Route("/responses", responses, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/_sim/profiles", get_profiles, methods=["GET"]),
        Route("/_sim/profiles/{model:path}", put_profile, methods=["PUT"]),
        Route("/_sim/profiles/{model:path}", delete_profile, methods=["DELETE"]),
        Route("/_sim/default_profile", put_default_profile, methods=["PUT"]),
        Route("/_sim/script/{model:path}", post_script, methods=["POST"]),
        Route("/_sim/requests", get_requests, methods=["GET"]),
        Route("/_sim/requests", delete_requests, methods=["DELETE"]),
        Route("/_sim/stats", get_stats, methods=["GET"]),
        Route("/_sim/reset", post_reset, methods=["POST"]),
    ]


def create_simulator_app(
    profiles: Mapping[str, SimProfile] | None = None,
    *,
    seed: int | None = None,
    default_profile: SimProfile | None = None,
) -> Starlette:
    """A simulator app; unknown models use ``default_profile`` (fast, healthy by default)."""
    app = Starlette(routes=_routes(), exception_handlers={ValueError: _bad_control_request})
    app.state.sim = SimState(dict(profiles or {}), default_profile or SimProfile(), seed)
    return app
