"""Handlers of the tracking endpoints: stats, workflows, feedback (thin: parse, delegate, shape).

- ``GET /v1/stats[?agent=A&context=C]``: per agent and model counters next to the posterior the
  agent's policy samples (for prompts of context C; every prompt when absent)
- ``GET /v1/workflows[?agent=A&limit=N]``: recent workflows, newest first
- ``GET /v1/workflows/{id}``: one workflow's summary (404 if unknown or expired)
- ``POST /v1/workflows/{id}/finish`` ``{"outcome": "success", "score": 0.8}``: mark finished
- ``POST /v1/feedback`` ``{"request_id"|"workflow_id": ..., "score": 0..1}``: explicit feedback
- ``GET /v1/requests/{id}``: one answered request's decision record (404 if unknown or
  expired); read after this process's queued outcomes are learned from (read-your-writes)
- ``GET /metrics``: the same counters, and this process's, for Prometheus (proxy.tracking.metrics)
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from proxy.http.body import read_body
from proxy.http.routes import json_response, services_of, state_of, tracker_of
from proxy.pipeline.ready_counters import write_counters
from proxy.tracking import inputs
from proxy.tracking.backend import UNAVAILABLE
from proxy.tracking.metrics import CONTENT_TYPE, render
from proxy.tracking.records import record_payload
from proxy.tracking.tracker import DEFAULT_LIST_LIMIT, Tracker
from proxy.wire.errors import ProxyError, error_response

Handler = Callable[[Request, Tracker], Awaitable[Response]]
RETRY_AFTER_S = "1"
"""Retry-After of an outage 503: the tracking writer retries Redis every second too."""

log = logging.getLogger("model_manager.tracking")


def _tracked(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Give ``handler`` the app's tracker; ProxyError becomes an OpenAI-shaped error, and so
    does a storage outage (503 with one warning line, no stack trace)."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request, tracker_of(request))
        except ProxyError as error:
            return error_response(error)
        except UNAVAILABLE as exc:
            return error_response(_outage(request, exc))

    return endpoint


def _outage(request: Request, exc: BaseException) -> ProxyError:
    """Log ``exc`` in one line; the client's 503 (without Redis' address or the error text)."""
    kind = type(exc).__name__
    log.warning("%s %s: tracking store unavailable (%s: %s)", request.method, request.url.path, kind, exc)
    message = f"tracking store unavailable: Redis is not answering ({kind}); retry shortly"
    return ProxyError(503, "tracking_unavailable", message, headers={"Retry-After": RETRY_AFTER_S})


def _query_params(request: Request, *allowed: str) -> None:
    """ProxyError 400 for a query parameter the endpoint does not take (a typo filters nothing)."""
    unknown = sorted(set(request.query_params) - set(allowed))
    if unknown:
        raise ProxyError(
            400,
            "unknown_parameter",
            f"unknown query parameter(s) {unknown}; expected {list(allowed)}",
            param=unknown[0],
        )


async def stats(request: Request, tracker: Tracker) -> Response:
    _query_params(request, "agent", "context")
    agent = inputs.check_agent(request.query_params.get("agent"))
    context = inputs.check_context(request.query_params.get("context"))
    return json_response(await tracker.stats(agent, context))


async def metrics(request: Request, tracker: Tracker) -> Response:
    counts, means = await tracker.metrics_input()
    text = render(counts, means, process_counters(request), services_of(request).request_metrics)
    return Response(text, media_type=CONTENT_TYPE)


def process_counters(request: Request) -> dict[str, int]:
    """This process's counters: requests, store read outages, and /ready's write counters
    (``pending`` is a level, every other one a running total)."""
    services = services_of(request)
    found = {
        "requests_total": services.counters.requests,
        "store_unavailable_reads_total": services.counters.store_unavailable_reads,
    }
    writes = write_counters(state_of(request).counters(), services.learner)
    for part, values in writes.items():
        for name, value in values.items():
            found[f"{part}_{name}" if name == "pending" else f"{part}_{name}_total"] = value
    return found


async def get_request(request: Request, tracker: Tracker) -> Response:
    request_id = inputs.check_request_id(request.path_params["request_id"])
    await services_of(request).learner.settled()
    record = await tracker.backend.decision(request_id)
    if record is None:
        raise inputs.not_found(f"request {request_id!r} (no answered decision recorded)")
    return json_response(record_payload(record))


async def list_workflows(request: Request, tracker: Tracker) -> Response:
    _query_params(request, "agent", "limit")
    agent = inputs.check_agent(request.query_params.get("agent"))
    limit = inputs.check_limit(request.query_params.get("limit"), DEFAULT_LIST_LIMIT)
    return json_response(await tracker.workflows(agent, limit))


async def get_workflow(request: Request, tracker: Tracker) -> Response:
    workflow_id = inputs.check_workflow(request.path_params["workflow_id"])
    summary = await tracker.workflow(workflow_id)
    if summary is None:
        raise inputs.not_found(f"workflow {workflow_id!r}")
    return json_response(summary)


async def finish_workflow(request: Request, tracker: Tracker) -> Response:
    workflow_id = inputs.check_workflow(request.path_params["workflow_id"])
    outcome, score = inputs.parse_finish(await _body(request))
    summary = await tracker.finish(workflow_id, outcome, score)
    if summary is None:
        raise inputs.not_found(f"workflow {workflow_id!r}")
    return json_response(summary)


async def post_feedback(request: Request, tracker: Tracker) -> Response:
    body = inputs.parse_feedback(await _body(request))
    if body.request_id is not None:
        result = await tracker.credit_request(body.request_id, body.score)
        what = f"request {body.request_id!r} (no answered decision recorded)"
    else:
        assert body.workflow_id is not None
        result = await tracker.credit_workflow(body.workflow_id, body.score)
        what = f"workflow {body.workflow_id!r}"
    if result is None:
        raise inputs.not_found(what)
    return json_response(result)


async def _body(request: Request) -> bytes:
    return await read_body(request, services_of(request).config.server.max_body_bytes)


def tracking_routes() -> list[Route]:
    """The routes, under /v1 and without it (like the chat routes)."""
    table: list[tuple[str, Handler, str]] = [
        ("/stats", stats, "GET"),
        ("/workflows", list_workflows, "GET"),
        ("/workflows/{workflow_id:path}/finish", finish_workflow, "POST"),
        ("/workflows/{workflow_id:path}", get_workflow, "GET"),
        ("/feedback", post_feedback, "POST"),
        ("/requests/{request_id:path}", get_request, "GET"),
    ]
    versioned = [
        Route(prefix + path, _tracked(handler), methods=[method])
        for prefix in ("/v1", "")
        for path, handler, method in table
    ]
    return [*versioned, Route("/metrics", _tracked(metrics), methods=["GET"])]
