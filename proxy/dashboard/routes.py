"""The dashboard's routes: pages, their JSON twins under /dashboard/api, login, static files.

Every page is rendered on the server; its script polls the JSON twin every few seconds and
swaps in the fresh sections and chart data (no reload). With keys (proxy.http.auth), pages redirect to
the login form and the API answers 401 until the browser holds a session (proxy.dashboard.guard).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from html import escape
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from proxy.dashboard import data, html, pages, views
from proxy.dashboard.guard import LOGIN, Guard, login_fields, safe_next, signed_out
from proxy.http.auth import KeyRing
from proxy.http.body import read_body
from proxy.http.routes import json_response, services_of, tracker_of
from proxy.tracking import inputs
from proxy.tracking.backend import UNAVAILABLE
from proxy.wire.errors import ProxyError, bad_request, error_response

STATIC_DIR = Path(__file__).parent / "static"
LOGIN_FORM_BYTES = 4096
DEFAULT_HOURS, MAX_HOURS = 3.0, 6.0
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

View = tuple[str, dict[str, Any]]
"""(title, keyword arguments of pages.page)."""
Builder = Callable[[Request], Awaitable[tuple[dict[str, Any], View]]]


async def overview(request: Request) -> tuple[dict[str, Any], View]:
    found = await data.overview(services_of(request), tracker_of(request), _window(request))
    view = {"sections": views.overview(found), "charts": found["charts"],
            "chart_ids": [c["id"] for c in found["charts"]],
            "order": [("totals", "Totals"), ("agents", "Agents"), ("models", "Models")]}
    return found, ("Overview", view)


async def agent(request: Request) -> tuple[dict[str, Any], View]:
    name = _agent(request.path_params["agent"])
    found = await data.agent_page(services_of(request), tracker_of(request), name, _window(request))
    view = {"sections": views.agent(found), "charts": found["charts"],
            "chart_ids": [c["id"] for c in found["charts"]],
            "order": [("agent-models", "Models"), ("posteriors", "Posteriors: 90% credible intervals"),
                      ("contexts", "First choices per prompt context (charted window)"),
                      ("recent", "Recent decisions")]}
    return found, (f"Agent {name}", view)


async def workflows(request: Request) -> tuple[dict[str, Any], View]:
    name = inputs.check_agent(request.query_params.get("agent") or None)
    status = request.query_params.get("status") or None
    found = await data.workflows_page(tracker_of(request), name, status)
    view = {"sections": views.workflows(found), "charts": [], "intro": _filters(name, status),
            "order": [("workflow-list", "Recent workflows")]}
    return found, ("Workflows", view)


async def workflow(request: Request) -> tuple[dict[str, Any], View]:
    workflow_id = inputs.check_workflow(request.path_params["workflow_id"])
    found = await data.workflow_page(tracker_of(request), workflow_id)
    if found is None:
        raise inputs.not_found(f"workflow {workflow_id!r}")
    view = {"sections": views.workflow(found), "charts": [],
            "order": [("workflow-summary", "Summary"), ("workflow-usage", "Agents \u00d7 models"),
                      ("workflow-calls", "Calls in time order")]}
    return found, (f"Workflow {workflow_id}", view)


def _filters(agent: str | None, status: str | None) -> str:
    options = "".join(
        f'<option value="{v}"{" selected" if v == (status or "") else ""}>{label}</option>'
        for v, label in (("", "any status"), ("open", "open"), ("finished", "finished"),
                         ("success", "outcome: success"), ("failure", "outcome: failure"))
    )
    value = escape(agent or "")
    return (
        f'<form method="get" class="filters"><label>Agent <input name="agent" value="{value}"></label>'
        f'<label>Status <select name="status">{options}</select></label>'
        '<button type="submit">Filter</button></form>'
    )


def _agent(name: str) -> str:
    checked = inputs.check_agent(name)
    assert checked is not None
    return checked


def _window(request: Request) -> data.Window:
    raw = request.query_params.get("hours")
    try:
        hours = DEFAULT_HOURS if raw is None else float(raw)
    except ValueError:
        hours = -1.0
    if not 0.05 <= hours <= MAX_HOURS:
        raise bad_request(f"'hours' must be a number from 0.05 to {MAX_HOURS:g}", param="hours")
    return data.Window(time.time(), hours)


class Dashboard:
    """The handlers, sharing one Guard."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    def page(self, build: Builder, api: Callable[[Request], str]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if not self.guard.allows(request):
                return RedirectResponse(f"{LOGIN}?next={request.url.path}", status_code=303, headers=HEADERS)
            try:
                _, (title, view) = await build(request)
            except ProxyError as error:
                return _error_page(error.status, error.message)
            except UNAVAILABLE:
                return _error_page(503, "tracking store unavailable")
            text = pages.page(title=title, api=api(request), logout=self.guard.enabled, **view)
            return HTMLResponse(text, headers=HEADERS)

        return endpoint

    def api(self, build: Builder) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if not self.guard.allows(request):
                return error_response(ProxyError(401, "invalid_api_key", "sign in to the dashboard first"))
            try:
                found, (_, view) = await build(request)
            except ProxyError as error:
                return error_response(error)
            except UNAVAILABLE:
                return error_response(ProxyError(503, "tracking_unavailable", "tracking store unavailable"))
            found.pop("charts", None)
            return json_response({"sections": view["sections"], "charts": view["charts"], "data": found})

        return endpoint

    async def login_form(self, request: Request) -> Response:
        if not self.guard.enabled or self.guard.allows(request):
            return RedirectResponse(safe_next(request.query_params.get("next", "")), status_code=303)
        form = pages.login(next_path=safe_next(request.query_params.get("next", "")))
        return HTMLResponse(form, headers=HEADERS)

    async def login(self, request: Request) -> Response:
        try:
            offered, next_path = login_fields(await read_body(request, LOGIN_FORM_BYTES))
        except ProxyError as error:
            return error_response(error)
        signed = self.guard.signed_in(request, offered, next_path)
        if signed is None:
            form = pages.login(error="Wrong key.", next_path=next_path)
            return HTMLResponse(form, status_code=401, headers=HEADERS)
        return signed

    async def logout(self, request: Request) -> Response:
        return signed_out()


def _error_page(status: int, message: str) -> Response:
    text = pages.page(title=f"Error {status}", api="", sections={"error": html.text(message)},
                      order=[("error", "What happened")], charts=[])
    return HTMLResponse(text, status_code=status, headers=HEADERS)


def dashboard_routes(keys: KeyRing) -> list[BaseRoute]:
    """Every dashboard route, for the app's route list (``keys`` empty: no login)."""
    board = Dashboard(Guard(keys))
    table: list[tuple[str, Builder, Callable[[Request], str]]] = [
        ("", overview, lambda r: "/dashboard/api/overview"),
        ("/agents/{agent:path}", agent,
         lambda r: f"/dashboard/api/agents/{html.path_part(r.path_params['agent'])}"),
        ("/workflows", workflows, lambda r: "/dashboard/api/workflows"),
        ("/workflows/{workflow_id:path}", workflow,
         lambda r: f"/dashboard/api/workflows/{html.path_part(r.path_params['workflow_id'])}"),
    ]
    found: list[BaseRoute] = [
        Route("/dashboard/login", board.login_form, methods=["GET"]),
        Route("/dashboard/login", board.login, methods=["POST"]),
        Route("/dashboard/logout", board.logout, methods=["POST"]),
        Mount("/dashboard/static", app=StaticFiles(directory=STATIC_DIR), name="dashboard-static"),
    ]
    for path, build, api in table:
        found.append(Route("/dashboard/api" + (path or "/overview"), board.api(build), methods=["GET"]))
        found.append(Route("/dashboard" + path, board.page(build, api), methods=["GET"]))
    return found
