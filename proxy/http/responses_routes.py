"""``POST /v1/responses``: the Responses API, served by the chat pipeline (proxy.responses_api)."""

from __future__ import annotations

import dataclasses

from starlette.requests import Request
from starlette.routing import Route

from proxy.http import grants
from proxy.http.body import read_body, until_disconnect
from proxy.http.routes import services_of
from proxy.responses_api.endpoint import handle_responses, parse_responses_request
from proxy.wire.errors import ProxyError, error_response
from proxy.wire.sse_response import Reply


async def create_response(request: Request) -> Reply:
    services = services_of(request)
    try:
        raw = await read_body(request, services.config.server.max_body_bytes)
        parsed = parse_responses_request(raw, request.headers, services.clock())
        grants.check_agent(request, parsed.chat.agent)
        grants.check_model(request, parsed.chat.model)
        parsed = dataclasses.replace(parsed, chat=grants.limit_routing(request, parsed.chat, services.config))
        services.counters.requests += 1
        return await until_disconnect(request, handle_responses(services, parsed))
    except ProxyError as error:
        return error_response(error)


def responses_routes() -> list[Route]:
    return [
        Route("/v1/responses", create_response, methods=["POST"]),
        Route("/responses", create_response, methods=["POST"]),
    ]
