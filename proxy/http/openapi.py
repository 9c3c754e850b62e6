"""The OpenAPI 3.1 description of every endpoint, served at ``GET /openapi.json``.

The request schemas state what the proxy itself enforces (bodies, headers, ids), built from the
same patterns and field table the validators use; every 4xx/5xx is the OpenAI-shaped error.
``tests/proxy/http/test_openapi.py`` fails when a route of the app is not described here.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from proxy.pipeline.request import (
    AGENT_HEADER,
    OPTIONAL_FIELDS,
    PIN_HEADER,
    PIN_VALUES,
    RANGES,
    WORKFLOW_HEADER,
)
from proxy.tracking.inputs import MAX_LIMIT, OUTCOMES
from proxy.wire.names import NAME_PATTERN, WORKFLOW_PATTERN

Schema = dict[str, Any]
VERSIONED = ("/v1", "")
"""Prefixes of the OpenAI-style routes: each is served under /v1 and without it."""


def anchored(pattern: str) -> str:
    return f"^{pattern}$"


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(kinds: tuple[str, ...]) -> Schema:
    return {"type": [*kinds, "null"]}


def _chat_request() -> Schema:
    properties: dict[str, Schema] = {name: nullable(kinds) for name, kinds in OPTIONAL_FIELDS.items()}
    properties["messages"] = {"type": "array", "minItems": 1, "items": ref("Message")}
    properties["model"]["description"] = "a model or group name, 'auto', or absent: the router picks"
    properties["tools"]["items"] = {"type": "object"}
    for name, (least, most) in RANGES.items():
        properties[name].update({"minimum": least} if most is None else {"minimum": least, "maximum": most})
    properties["response_format"] = {
        "type": ["object", "null"],
        "required": ["type"],
        "properties": {"type": {"type": "string"}},
        "description": "json_object / json_schema ask for JSON (checked by the quality heuristic)",
    }
    return {
        "type": "object",
        "required": ["messages"],
        "properties": properties,
        "additionalProperties": True,
        "description": "OpenAI chat completion request; fields not listed pass through unchecked",
    }


def _error() -> Schema:
    detail = {
        "type": "object",
        "required": ["message", "type", "param", "code"],
        "properties": {
            "message": {"type": "string"},
            "type": {"type": "string"},
            "param": {"type": ["string", "null"]},
            "code": {"type": ["string", "null"]},
            "details": {},
        },
    }
    return {"type": "object", "required": ["error"], "properties": {"error": detail}}


def _schemas() -> dict[str, Schema]:
    score = {"type": "number", "minimum": 0, "maximum": 1}
    workflow_id = {"type": "string", "pattern": anchored(WORKFLOW_PATTERN)}
    return {
        "Error": _error(),
        "Message": {
            "type": "object",
            "required": ["role"],
            "properties": {
                "role": {"enum": ["system", "developer", "user", "assistant", "tool", "function"]},
                "content": {},
            },
            "additionalProperties": True,
        },
        "ChatCompletionRequest": _chat_request(),
        "ChatCompletion": {
            "type": "object",
            "required": ["choices"],
            "properties": {"id": {"type": "string"}, "choices": {"type": "array"}, "usage": {}},
        },
        "Model": {
            "type": "object",
            "required": ["id", "object", "created", "owned_by"],
            "properties": {
                "id": {"type": "string"},
                "object": {"const": "model"},
                "created": {"type": "integer"},
                "owned_by": {"type": "string"},
            },
        },
        "ModelList": {
            "type": "object",
            "required": ["object", "data"],
            "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": ref("Model")}},
        },
        "Feedback": {
            "type": "object",
            "oneOf": [
                {"required": ["request_id", "score"], "not": {"required": ["workflow_id"]}},
                {"required": ["workflow_id", "score"], "not": {"required": ["request_id"]}},
            ],
            "properties": {
                "request_id": {"type": "string", "pattern": anchored(WORKFLOW_PATTERN)},
                "workflow_id": workflow_id,
                "score": score,
            },
            "additionalProperties": False,
        },
        "Finish": {
            "type": "object",
            "properties": {
                "outcome": {"enum": list(OUTCOMES), "default": "success"},
                "score": {**score, "type": ["number", "null"]},
            },
            "additionalProperties": False,
        },
        "Object": {"type": "object"},
        "ResponsesRequest": {
            "type": "object",
            "required": ["input"],
            "properties": {
                "model": {"type": "string", "pattern": anchored(NAME_PATTERN)},
                "input": {
                    "oneOf": [
                        {"type": "string", "minLength": 1},
                        {"type": "array", "minItems": 1, "items": ref("ResponsesMessage")},
                    ]
                },
                "instructions": {"type": "string"},
                "stream": {"type": "boolean"},
                "tools": {"type": "array", "minItems": 1, "items": ref("ResponsesTool")},
            },
            "additionalProperties": False,
            "description": "OpenAI Responses request (the fields described here are the checked "
            "ones; previous_response_id and store: true are refused)",
        },
        "ResponsesMessage": {
            "type": "object",
            "required": ["role", "content"],
            "properties": {
                "type": {"const": "message"},
                "role": {"enum": ["user", "assistant", "system", "developer"]},
                "content": {"type": "string", "minLength": 1},
            },
            "additionalProperties": False,
        },
        "ResponsesTool": {
            "type": "object",
            "required": ["type", "name", "parameters"],
            "properties": {
                "type": {"const": "function"},
                "name": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
                "description": {"type": "string"},
                "parameters": {
                    "type": "object",
                    "required": ["type"],
                    "properties": {"type": {"const": "object"}},
                },
            },
            "additionalProperties": False,
        },
        "EmbeddingsRequest": {
            "type": "object",
            "required": ["model", "input"],
            "properties": {
                "model": {"type": "string", "minLength": 1},
                "input": {
                    "oneOf": [
                        {"type": "string", "minLength": 1},
                        {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "oneOf": [
                                    {"type": "string", "minLength": 1},
                                    {"type": "array", "minItems": 1, "items": {"type": "integer"}},
                                ]
                            },
                        },
                    ]
                },
            },
            "additionalProperties": True,
        },
    }


def _header(name: str, pattern: str | None, description: str) -> Schema:
    schema: Schema = {"type": "string"}
    if pattern is not None:
        schema["pattern"] = f"^({pattern})?$"
    return {"name": name, "in": "header", "required": False, "schema": schema, "description": description}


def _chat_headers() -> list[Schema]:
    pin = (
        f"{'/'.join(v for v, on in PIN_VALUES.items() if on)} (any case): send to the requested model "
        f"only, no fallback; {'/'.join(v for v, on in PIN_VALUES.items() if not on and v)}: routed"
    )
    return [
        _header(AGENT_HEADER, NAME_PATTERN, "the agent learned for (absent or empty: 'default')"),
        _header(WORKFLOW_HEADER, WORKFLOW_PATTERN, "groups requests into one workflow"),
        _header(PIN_HEADER, None, pin),
    ]


def _query(name: str, schema: Schema) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def _path(name: str, schema: Schema) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _json(schema: Schema) -> Schema:
    return {"content": {"application/json": {"schema": schema}}}


def _operation(
    summary: str,
    ok: Schema,
    *,
    parameters: list[Schema] | None = None,
    body: Schema | None = None,
    body_required: bool = True,
    secured: bool = True,
) -> Schema:
    errors = {"description": "OpenAI-shaped error", **_json(ref("Error"))}
    operation: Schema = {
        "summary": summary,
        "parameters": parameters or [],
        "responses": {"200": {"description": "success", **ok}, "4XX": errors, "5XX": errors},
    }
    if body is not None:
        operation["requestBody"] = {"required": body_required, **_json(body)}
    if not secured:
        operation["security"] = []
    return operation


def _chat_ok() -> Schema:
    sse = {"schema": {}, "description": "stream: true; chunk events (data: lines), then [DONE]"}
    return {"content": {"application/json": {"schema": ref("ChatCompletion")}, "text/event-stream": sse}}


def _versioned() -> dict[str, dict[str, Schema]]:
    agent = _query("agent", {"type": "string", "pattern": anchored(NAME_PATTERN)})
    workflow = _path("workflow_id", {"type": "string", "pattern": anchored(WORKFLOW_PATTERN)})
    limit = _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT})
    return {
        "/chat/completions": {
            "post": _operation(
                "Route one chat completion",
                _chat_ok(),
                parameters=_chat_headers(),
                body=ref("ChatCompletionRequest"),
            )
        },
        "/models": {"get": _operation("Models, groups and auto", _json(ref("ModelList")))},
        "/models/{model}": {
            "get": _operation(
                "One listed model (404 model_not_found otherwise)",
                _json(ref("Model")),
                parameters=[_path("model", {"type": "string"})],
            )
        },
        "/stats": {
            "get": _operation(
                "Per agent and model counters; with context, that prompt context's posterior",
                _json(ref("Object")),
                parameters=[agent, _query("context", {"type": "string"})],
            )
        },
        "/workflows": {
            "get": _operation(
                "Recent workflows, newest first", _json(ref("Object")), parameters=[agent, limit]
            )
        },
        "/workflows/{workflow_id}": {
            "get": _operation("One workflow's summary", _json(ref("Object")), parameters=[workflow])
        },
        "/workflows/{workflow_id}/finish": {
            "post": _operation(
                "Mark a workflow finished",
                _json(ref("Object")),
                parameters=[workflow],
                body=ref("Finish"),
                body_required=False,
            )
        },
        "/feedback": {
            "post": _operation(
                "Explicit feedback on a request or workflow", _json(ref("Object")), body=ref("Feedback")
            )
        },
        "/requests/{request_id}": {
            "get": _operation(
                "One request's decision record (404 when unknown or expired)",
                _json(ref("Object")),
                parameters=[_path("request_id", {"type": "string", "pattern": anchored(WORKFLOW_PATTERN)})],
            )
        },
        "/responses": {
            "post": _operation(
                "Route one Responses API request (relayed natively to models listing /v1/responses in "
                "supported_endpoints, translated to chat for the others)",
                _responses_ok(),
                parameters=_chat_headers(),
                body=ref("ResponsesRequest"),
            )
        },
        "/embeddings": {
            "post": _operation(
                "Embeddings from the named model or group, in order (nothing learned)",
                _json(ref("Object")),
                body=ref("EmbeddingsRequest"),
            )
        },
    }


def _responses_ok() -> Schema:
    sse = {"schema": {}, "description": "stream: true; Responses events (response.created ... completed)"}
    return {"content": {"application/json": {"schema": ref("Object")}, "text/event-stream": sse}}


def _dashboard() -> dict[str, dict[str, Schema]]:
    """The operator pages (HTML) and their JSON twins; a session cookie or the key."""
    html = {"content": {"text/html": {"schema": {"type": "string"}}}}
    agent = [_path("agent", {"type": "string", "pattern": anchored(NAME_PATTERN)})]
    workflow = [_path("workflow_id", {"type": "string", "pattern": anchored(WORKFLOW_PATTERN)})]
    pages: dict[str, tuple[str, list[Schema]]] = {
        "": ("Overview", []),
        "/agents/{agent}": ("One agent", agent),
        "/workflows": ("Workflows", []),
        "/workflows/{workflow_id}": ("One workflow", workflow),
    }
    paths: dict[str, dict[str, Schema]] = {}
    for path, (summary, parameters) in pages.items():
        paths["/dashboard" + path] = {"get": _operation(f"Dashboard: {summary}", html, parameters=parameters)}
        api = "/dashboard/api" + (path or "/overview")
        data = _operation(f"Dashboard data: {summary}", _json(ref("Object")), parameters=parameters)
        paths[api] = {"get": data}
    login_form = {"type": "object", "properties": {"key": {"type": "string"}, "next": {"type": "string"}}}
    paths["/dashboard/login"] = {
        "get": _operation("Dashboard sign-in form", html, secured=False),
        "post": {
            **_operation("Sign in with the master key (sets a session cookie)", html, secured=False),
            "requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": login_form}}},
        },
    }
    paths["/dashboard/logout"] = {"post": _operation("Sign out (clears the session cookie)", html)}
    return paths


def _unversioned() -> dict[str, dict[str, Schema]]:
    text = {"content": {"text/plain": {"schema": {"type": "string"}}}}
    return {
        "/health": {"get": _operation("Liveness (no key needed)", _json(ref("Object")), secured=False)},
        "/ready": {"get": _operation("Readiness: store reachable, write counters", _json(ref("Object")))},
        "/metrics": {"get": _operation("Prometheus text exposition", text)},
        "/openapi.json": {"get": _operation("This description", _json(ref("Object")))},
        "/admin/reload": {
            "post": _operation(
                "Re-read config.yaml (400 naming the key path when the file is bad; the old config "
                "keeps serving)",
                _json(ref("Object")),
            )
        },
    }


def _paths() -> dict[str, dict[str, Schema]]:
    paths = {prefix + path: item for prefix in VERSIONED for path, item in _versioned().items()}
    return {**paths, **_unversioned(), **_dashboard()}


def openapi_document() -> dict[str, Any]:
    """The whole description (a new dict on each call)."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "Model Manager", "version": "1", "description": __doc__.splitlines()[0]},
        "paths": _paths(),
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {"masterKey": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"masterKey": []}],
    }


def openapi_route() -> Route:
    """``GET /openapi.json``: the description, encoded once."""
    encoded = orjson.dumps(openapi_document())

    async def openapi_json(request: Request) -> Response:
        return Response(encoded, media_type="application/json")

    return Route("/openapi.json", openapi_json, methods=["GET"])
