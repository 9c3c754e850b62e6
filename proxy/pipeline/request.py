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
    _check_stream(body)
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise bad_request("'model' must be a string", param="model")
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
    return body


def _check_messages(messages: object) -> None:
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty array", param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise bad_request(f"messages[{index}] must be an object with a string 'role'", param="messages")


def _check_stream(body: Mapping[str, Any]) -> None:
    if "stream" in body and body["stream"] is not None and not isinstance(body["stream"], bool):
        raise bad_request("'stream' must be a boolean", param="stream")


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
