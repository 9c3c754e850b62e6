"""An incoming chat request, parsed and validated once, before any routing."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from proxy.pipeline.explain import EXPLAIN_HEADER, wants_explanation
from proxy.wire.errors import ProxyError, bad_request
from proxy.wire.names import DEFAULT_AGENT, is_valid_name, is_valid_workflow

AGENT_HEADER = "x-agent"
WORKFLOW_HEADER = "x-workflow"
PIN_HEADER = "x-model-manager-pin"
PIN_VALUES = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False, "": False}
"""``X-Model-Manager-Pin`` values (case-insensitive); anything else is a 400."""
MAX_NESTING = 128
"""Deepest arrays/objects a body may nest: orjson parses 1024 levels but re-encodes only ~254."""
OPTIONAL_FIELDS: dict[str, tuple[str, ...]] = {
    "model": ("string",),
    "stream": ("boolean",),
    "tools": ("array",),
    "tool_choice": ("string", "object"),
    "response_format": ("object",),
    "stream_options": ("object",),
    "temperature": ("number",),
    "top_p": ("number",),
    "presence_penalty": ("number",),
    "frequency_penalty": ("number",),
    "max_tokens": ("integer",),
    "max_completion_tokens": ("integer",),
    "n": ("integer",),
    "seed": ("integer",),
    "stop": ("string", "array"),
    "user": ("string",),
}
"""Well-known optional body fields and their JSON types (null is accepted for each); a wrong
type is a 400 here rather than a wasted upstream call. Other fields pass through unchecked."""
RANGES: dict[str, tuple[float, float | None]] = {
    "n": (1, 128),
    "max_tokens": (1, None),
    "max_completion_tokens": (1, None),
    "temperature": (0, 2),
    "top_p": (0, 1),
    "presence_penalty": (-2, 2),
    "frequency_penalty": (-2, 2),
}
"""Bounds as OpenAI documents them: at least one choice or token, at most 128 choices,
sampling parameters within their ranges (a request outside them no model would accept)."""


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """What the pipeline routes: the client's body plus who sent it."""

    body: dict[str, Any]
    agent: str
    workflow: str | None
    model: str | None
    pinned: bool
    request_id: str
    explain: bool = False
    """``X-Model-Manager-Explain: true``: answer with the decision's explanation header."""
    routable: frozenset[str] | None = None
    """The only models it may be routed to (the client key's), or None for any."""

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True

    @property
    def messages(self) -> list[Any]:
        messages: list[Any] = self.body["messages"]
        return messages

    @property
    def wants_json(self) -> bool:
        response_format = self.body.get("response_format")
        return isinstance(response_format, dict) and response_format.get("type") in (
            "json_object",
            "json_schema",
        )


def parse_chat_request(raw: bytes, headers: Mapping[str, str]) -> ChatRequest:
    """Validate body and headers; raises ProxyError (400) naming what is wrong."""
    return chat_request(json_object(raw), headers)


def chat_request(body: dict[str, Any], headers: Mapping[str, str]) -> ChatRequest:
    """Validate a parsed chat body and the headers; raises ProxyError (400) naming what is wrong."""
    _check_messages(body.get("messages"))
    _check_fields(body)
    model = body.get("model")
    return ChatRequest(
        body=body,
        agent=_agent(headers.get(AGENT_HEADER)),
        workflow=_workflow(headers.get(WORKFLOW_HEADER)),
        model=model or None,
        pinned=_pinned(headers.get(PIN_HEADER, "")),
        request_id=new_request_id(),
        explain=wants_explanation(headers.get(EXPLAIN_HEADER, "")),
    )


def new_request_id() -> str:
    return f"mm-{uuid.uuid4().hex}"


def json_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object; ProxyError 400 (invalid_json) otherwise."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"request body is not valid JSON ({exc})", code="invalid_json") from exc
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object", code="invalid_json")
    if not nests_within(body, MAX_NESTING):
        raise bad_request(f"request body nests deeper than {MAX_NESTING} levels", code="invalid_json")
    return body


def nests_within(value: object, limit: int) -> bool:
    """Whether parsed JSON ``value`` nests arrays/objects at most ``limit`` levels deep."""
    level: list[object] = [value]
    for _ in range(limit):
        level = [
            child
            for item in level
            for child in (item.values() if isinstance(item, dict) else item if isinstance(item, list) else ())
        ]
        if not level:
            return True
    return not any(isinstance(item, dict | list) for item in level)


def _check_messages(messages: object) -> None:
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty array", param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise bad_request(f"messages[{index}] must be an object with a string 'role'", param="messages")


def _check_fields(body: Mapping[str, Any]) -> None:
    for name, types in OPTIONAL_FIELDS.items():
        value = body.get(name)
        if value is not None and not any(is_json_type(value, kind) for kind in types):
            raise bad_request(f"'{name}' must be {' or '.join(_ARTICLE[t] for t in types)}", param=name)
    for name, (least, most) in RANGES.items():
        value = body.get(name)
        if value is not None and not (least <= value and (most is None or value <= most)):
            within = f"at least {least}" if most is None else f"within {least}..{most}"
            raise bad_request(f"'{name}' must be {within}", param=name)
    tools = body.get("tools")
    if isinstance(tools, list) and not all(isinstance(tool, dict) for tool in tools):
        raise bad_request("'tools' must be an array of objects", param="tools")
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and not isinstance(response_format.get("type"), str):
        raise bad_request("'response_format' must have a string 'type'", param="response_format")


_ARTICLE = {
    "string": "a string",
    "boolean": "a boolean",
    "array": "an array",
    "object": "an object",
    "number": "a number",
    "integer": "an integer",
}


def is_json_type(value: object, kind: str) -> bool:
    """Whether ``value`` (parsed JSON) is of JSON Schema type ``kind`` (booleans are not numbers)."""
    if isinstance(value, bool):
        return kind == "boolean"
    if kind == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if kind == "number":
        return isinstance(value, int | float)
    python = {"string": str, "array": list, "object": dict}.get(kind)
    return python is not None and isinstance(value, python)


def _agent(value: str | None) -> str:
    if value is None or value == "":
        return DEFAULT_AGENT
    if not is_valid_name(value):
        raise _bad_header("X-Agent", "1-64 letters, digits or _.:@/- (starting with a letter or digit)")
    return value


def _workflow(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not is_valid_workflow(value):
        raise _bad_header("X-Workflow", "1-128 letters, digits or _.:@/- (starting with a letter or digit)")
    return value


def _pinned(value: str) -> bool:
    pinned = PIN_VALUES.get(value.strip().lower())
    if pinned is None:
        raise _bad_header("X-Model-Manager-Pin", "true or false (also 1/0, yes/no)")
    return pinned


def _bad_header(name: str, allowed: str) -> ProxyError:
    return ProxyError(400, "invalid_header", f"invalid {name} header: must be {allowed}", param=name)
