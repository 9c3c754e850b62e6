"""A Responses API request body as a chat completions body (pure; raises ProxyError 400).

``instructions`` becomes the first system message; ``input`` (a string, or message,
function_call and function_call_output items) becomes ``messages``; function tools are nested
the chat way; ``text.format`` becomes ``response_format``. What needs stored responses or
hosted tools is refused by name; other fields (metadata, include, truncation, ...) are
not forwarded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proxy.responses_api.input_items import to_messages
from proxy.wire.errors import ProxyError, bad_request

PASSED_THROUGH = ("model", "temperature", "top_p", "user", "parallel_tool_calls", "stream")
"""Fields with the same name and meaning in both APIs."""


def to_chat_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """The chat completions body for the Responses request ``body``."""
    _refuse_stored_state(body)
    chat: dict[str, Any] = {key: body[key] for key in PASSED_THROUGH if body.get(key) is not None}
    chat["messages"] = [*_instructions(body.get("instructions")), *to_messages(body.get("input"))]
    chat.update(_tools(body.get("tools")))
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = _positive_int(body["max_output_tokens"], "max_output_tokens")
    chat.update(_response_format(body.get("text")))
    chat.update(_reasoning(body.get("reasoning")))
    if chat.get("stream") is True:
        chat["stream_options"] = {"include_usage": True}
    return chat


def _refuse_stored_state(body: Mapping[str, Any]) -> None:
    """Stored responses, conversations and background runs are not kept by this proxy."""
    for field in ("previous_response_id", "conversation", "prompt"):
        if body.get(field) is not None:
            raise unsupported(
                field, f"'{field}' needs responses stored by the server, which this proxy does not keep"
            )
    if body.get("store") is True:
        raise unsupported("store", "'store': true is not supported: this proxy does not store responses")
    if body.get("background") is True:
        raise unsupported("background", "'background': true is not supported")


def _instructions(value: object) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, str):
        raise bad_request("'instructions' must be a string", param="instructions")
    return [{"role": "system", "content": value}]


def _tools(tools: object) -> dict[str, Any]:
    if tools is None:
        return {}
    if not isinstance(tools, list):
        raise bad_request("'tools' must be an array", param="tools")
    converted = [_function_tool(tool, index) for index, tool in enumerate(tools)]
    return {"tools": converted} if converted else {}


def _function_tool(tool: object, index: int) -> dict[str, Any]:
    """``{type: function, name, parameters, ...}`` -> ``{type: function, function: {...}}``."""
    param = f"tools[{index}]"
    if not isinstance(tool, dict):
        raise bad_request(f"{param} must be an object", param=param)
    if tool.get("type") != "function":
        raise unsupported(
            param, f"{param}: tool type {tool.get('type')!r} is not supported (only 'function')"
        )
    if not isinstance(tool.get("name"), str) or not tool["name"]:
        raise bad_request(f"{param}.name must be a non-empty string", param=f"{param}.name")
    function = {
        key: tool[key] for key in ("name", "description", "parameters", "strict") if tool.get(key) is not None
    }
    return {"type": "function", "function": function}


def _tool_choice(choice: object) -> object:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise unsupported(
        "tool_choice", "'tool_choice' must be 'auto', 'none', 'required' or {'type': 'function', 'name': ...}"
    )


def _response_format(text: object) -> dict[str, Any]:
    """``text.format`` -> ``response_format`` (plain text needs none)."""
    if text is None:
        return {}
    if not isinstance(text, dict):
        raise bad_request("'text' must be an object", param="text")
    fmt = text.get("format")
    if fmt is None or (isinstance(fmt, dict) and fmt.get("type") == "text"):
        return {}
    if isinstance(fmt, dict) and fmt.get("type") == "json_object":
        return {"response_format": {"type": "json_object"}}
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return {"response_format": {"type": "json_schema", "json_schema": _json_schema(fmt)}}
    raise bad_request(
        "'text.format.type' must be 'text', 'json_object' or 'json_schema'", param="text.format"
    )


def _json_schema(fmt: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(fmt.get("name"), str) or not isinstance(fmt.get("schema"), dict):
        raise bad_request(
            "a json_schema format needs a string 'name' and an object 'schema'", param="text.format"
        )
    return {key: fmt[key] for key in ("name", "schema", "strict", "description") if fmt.get(key) is not None}


def _reasoning(reasoning: object) -> dict[str, Any]:
    """``reasoning.effort`` -> ``reasoning_effort``; the rest (summaries) is not available."""
    if isinstance(reasoning, dict) and isinstance(reasoning.get("effort"), str):
        return {"reasoning_effort": reasoning["effort"]}
    return {}


def _positive_int(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise bad_request(f"'{field}' must be a positive integer", param=field)
    return value


def unsupported(param: str, message: str) -> ProxyError:
    """400 ``unsupported_parameter``: a valid Responses field this proxy cannot honour."""
    return ProxyError(400, "unsupported_parameter", message, param=param)
