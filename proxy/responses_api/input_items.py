"""Responses ``input`` (a string or a list of items) as chat ``messages`` (pure).

Messages keep their role (``developer`` becomes ``system``); input_text, output_text and
refusal parts become text, input_image parts image_url parts. Consecutive function_call items
become one assistant message with ``tool_calls``; a function_call_output a ``tool`` message.
Reasoning items are dropped (chat models cannot take them back).
"""

from __future__ import annotations

from typing import Any

from proxy.wire.errors import ProxyError, bad_request

ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
TEXT_PARTS = {"input_text": "text", "output_text": "text", "refusal": "refusal"}
SKIPPED_ITEMS = frozenset({"reasoning"})


def to_messages(value: object) -> list[dict[str, Any]]:
    """Chat messages for ``input``; ProxyError 400 naming the offending item."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise bad_request("'input' must be a string or a non-empty array of items", param="input")
    messages: list[dict[str, Any]] = []
    for index, item in enumerate(value):
        _add_item(messages, item, f"input[{index}]")
    return messages


def _add_item(messages: list[dict[str, Any]], item: object, param: str) -> None:
    if not isinstance(item, dict):
        raise bad_request(f"{param} must be an object", param=param)
    kind = item.get("type", "message")
    if not isinstance(kind, str):
        raise bad_request(f"{param}.type must be a string", param=f"{param}.type")
    if kind == "message":
        messages.append(_message(item, param))
    elif kind == "function_call":
        _add_call(messages, _tool_call(item, param))
    elif kind == "function_call_output":
        messages.append(_call_output(item, param))
    elif kind not in SKIPPED_ITEMS:
        raise ProxyError(
            400, "unsupported_parameter", f"{param}: item type {kind!r} is not supported", param=param
        )


def _message(item: dict[str, Any], param: str) -> dict[str, Any]:
    given = item.get("role")
    role = ROLES.get(given) if isinstance(given, str) else None
    if role is None:
        raise bad_request(f"{param}.role must be one of {', '.join(ROLES)}", param=f"{param}.role")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise bad_request(f"{param}.content must be a string or an array of parts", param=f"{param}.content")
    parts = [_part(part, f"{param}.content[{i}]") for i, part in enumerate(content)]
    if role != "user":  # only user messages take parts everywhere; others are joined text
        return {"role": role, "content": "".join(part.get("text", "") for part in parts)}
    return {"role": role, "content": parts}


def _part(part: object, param: str) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise bad_request(f"{param} must be an object", param=param)
    kind = part.get("type")
    if not isinstance(kind, str):
        raise bad_request(f"{param}.type must be a string", param=f"{param}.type")
    if kind in TEXT_PARTS:
        text = part.get("text") if kind != "refusal" else part.get("refusal")
        if not isinstance(text, str):
            raise bad_request(
                f"{param} needs a string '{'text' if kind != 'refusal' else 'refusal'}'", param=param
            )
        return {"type": "text", "text": text}
    if kind == "input_image" and isinstance(part.get("image_url"), str):
        image = {"url": part["image_url"], **({"detail": part["detail"]} if part.get("detail") else {})}
        return {"type": "image_url", "image_url": image}
    raise ProxyError(
        400, "unsupported_parameter", f"{param}: content part {kind!r} is not supported", param=param
    )


def _tool_call(item: dict[str, Any], param: str) -> dict[str, Any]:
    for field in ("call_id", "name", "arguments"):
        if not isinstance(item.get(field), str):
            raise bad_request(f"{param}.{field} must be a string", param=f"{param}.{field}")
    function = {"name": item["name"], "arguments": item["arguments"]}
    return {"id": item["call_id"], "type": "function", "function": function}


def _add_call(messages: list[dict[str, Any]], call: dict[str, Any]) -> None:
    """Append to the assistant message just before, or start one."""
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
        if not last.get("content"):
            last["content"] = None
        return
    messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _call_output(item: dict[str, Any], param: str) -> dict[str, Any]:
    if not isinstance(item.get("call_id"), str):
        raise bad_request(f"{param}.call_id must be a string", param=f"{param}.call_id")
    output = item.get("output")
    if isinstance(output, list):
        output = "".join(part.get("text", "") for part in output if isinstance(part, dict))
    if not isinstance(output, str):
        raise bad_request(f"{param}.output must be a string or an array of parts", param=f"{param}.output")
    return {"role": "tool", "tool_call_id": item["call_id"], "content": output}
