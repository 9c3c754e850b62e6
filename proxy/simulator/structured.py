"""Structured answers: JSON for ``response_format``, tool calls for ``tools``, and their faults.

A request with ``response_format`` ``{"type": "json_object"}`` gets a JSON object as content;
``{"type": "json_schema", "json_schema": {"schema": ...}}`` gets a minimal instance of the
schema (see instance.py). A request with ``tools`` gets a tool call when ``tool_choice`` is
"required" or names a function, or (``tool_choice`` "auto" or absent) when the profile's
``tool_call`` is set or the last message is the user's and asks for a tool: it names one
(the first named wins), or says "use/call/invoke ... tool/function" (the first tool).
The arguments are a minimal instance of the tool's ``parameters``.

Faults, drawn from the simulator's seeded rng: with probability ``bad_json_rate`` the JSON
content is truncated, not JSON, or (with a schema) breaks the schema; with probability
``bad_tool_call_rate`` the arguments are truncated JSON or lack the required properties.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from proxy.simulator.instance import minimal_instance, resolve, type_names
from proxy.simulator.profile import SimProfile

ASKS_FOR_A_TOOL = re.compile(r"\b(use|call|invoke|run)\b[^.?!\n]*\b(tools?|functions?)\b", re.IGNORECASE)
BAD_JSON_KINDS = ("truncated", "not_json", "schema")


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The one tool call of a simulated answer."""

    name: str
    arguments: str


def json_content(profile: SimProfile, body: Mapping[str, Any], rng: random.Random) -> str | None:
    """The JSON text ``response_format`` asks for (None: no JSON asked, or ``content`` set)."""
    response_format = body.get("response_format")
    if profile.content is not None or not isinstance(response_format, Mapping):
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        model = str(body.get("model", ""))
        schema: Mapping[str, Any] = {}
        value: Any = {"reply": f"Simulated reply from {model}."}
    elif kind == "json_schema":
        schema = _json_schema(response_format)
        value = minimal_instance(schema) if schema else {}
    else:
        return None
    if _draw(rng, profile.bad_json_rate):
        return _bad_json(value, schema, rng)
    return orjson.dumps(value).decode()


def tool_call(profile: SimProfile, body: Mapping[str, Any], rng: random.Random) -> ToolCall | None:
    """The tool call the request gets, or None (see the module docstring)."""
    tools = dict(_tools(body.get("tools")))
    name = _chosen_tool(profile, body, list(tools))
    if name is None:
        return None
    if profile.tool_arguments is not None:
        arguments = profile.tool_arguments
    else:
        arguments = orjson.dumps(minimal_instance(tools.get(name) or {"type": "object"})).decode()
    if _draw(rng, profile.bad_tool_call_rate):
        arguments = _bad_arguments(arguments, tools.get(name) or {}, rng)
    return ToolCall(name, arguments)


def _draw(rng: random.Random, rate: float) -> bool:
    """True with probability ``rate`` (no draw at 0 or 1, so other draws keep their order)."""
    return rate >= 1.0 or (rate > 0.0 and rng.random() < rate)


def _json_schema(response_format: Mapping[str, Any]) -> Mapping[str, Any]:
    """The schema of a ``json_schema`` response format ({} when absent)."""
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    return schema if isinstance(schema, Mapping) else {}


def _tools(tools: Any) -> list[tuple[str, Mapping[str, Any]]]:
    """(name, parameters schema) of each function tool offered, in order."""
    found: list[tuple[str, Mapping[str, Any]]] = []
    for tool in tools if isinstance(tools, list) else []:
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            params = function.get("parameters")
            found.append((function["name"], params if isinstance(params, Mapping) else {}))
    return found


def _chosen_tool(profile: SimProfile, body: Mapping[str, Any], names: Sequence[str]) -> str | None:
    """Which tool to call, or None."""
    choice = body.get("tool_choice")
    if not names or choice == "none":
        return None
    if isinstance(choice, Mapping):
        function = choice.get("function")
        named = function.get("name") if isinstance(function, Mapping) else None
        return str(named) if named is not None else names[0]
    if profile.tool_call or choice == "required":
        return names[0]
    return _asked_for(_last_user_text(body.get("messages")), names)


def _last_user_text(messages: Any) -> str:
    """The text of the last message when it is the user's ('' otherwise)."""
    if not isinstance(messages, list) or not messages or not isinstance(messages[-1], Mapping):
        return ""
    last = messages[-1]
    if last.get("role") != "user":
        return ""
    content = last.get("content")
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, Mapping)]
        return " ".join(p for p in parts if isinstance(p, str))
    return content if isinstance(content, str) else ""


def _asked_for(text: str, names: Sequence[str]) -> str | None:
    """The tool ``text`` names first, else the first tool when it asks for one, else None."""
    lowered = text.lower()
    positions = [(_mention(lowered, name), name) for name in names]
    mentioned = sorted((at, name) for at, name in positions if at >= 0)
    if mentioned:
        return mentioned[0][1]
    return names[0] if ASKS_FOR_A_TOOL.search(text) else None


def _mention(text: str, name: str) -> int:
    """Where ``name`` (or its words, for snake_case names) first appears as a word; -1 if not."""
    for form in (name.lower(), name.lower().replace("_", " ")):
        found = re.search(rf"(?<!\w){re.escape(form)}(?!\w)", text)
        if found:
            return found.start()
    return -1


def _bad_json(value: Any, schema: Mapping[str, Any], rng: random.Random) -> str:
    """``value`` made wrong: truncated, not JSON at all, or (with a schema) off-schema."""
    kinds = BAD_JSON_KINDS if schema else BAD_JSON_KINDS[:2]
    kind = rng.choice(kinds)
    text = orjson.dumps(value).decode()
    if kind == "truncated":
        return _truncated(text)
    if kind == "not_json":
        return f"Sure! Here is the JSON you asked for: {text[:-1]}"
    broken = _off_schema(value, resolve(schema, schema))
    return _truncated(text) if broken is None else orjson.dumps(broken).decode()


def _bad_arguments(arguments: str, schema: Mapping[str, Any], rng: random.Random) -> str:
    """Tool arguments made wrong: truncated JSON, or the required properties left out."""
    required = resolve(schema, schema).get("required")
    if isinstance(required, list) and required and rng.random() < 0.5:
        parsed = _loads_object(arguments)
        if parsed is not None:
            return orjson.dumps({k: v for k, v in parsed.items() if k not in required}).decode()
    return _truncated(arguments)


def _truncated(text: str) -> str:
    """The first half of ``text``, made sure not to parse."""
    cut = text[: len(text) // 2]
    return cut if _loads(cut) is None else "{" + cut


def _off_schema(value: Any, schema: Mapping[str, Any]) -> Any:
    """Valid JSON that breaks ``schema`` (required properties dropped, else the wrong type);
    None when the schema constrains neither."""
    required = schema.get("required")
    if isinstance(value, dict) and isinstance(required, list) and required:
        return {k: v for k, v in value.items() if k not in required}
    names = type_names(schema)
    if not names:
        return None
    return [value] if "array" not in names else {"not": "an array"}


def _loads_object(text: str) -> dict[str, Any] | None:
    """``text`` parsed when it is a JSON object, else None."""
    parsed = _loads(text)
    return parsed if isinstance(parsed, dict) else None


def _loads(text: str) -> Any:
    """``text`` parsed as JSON, or None when it does not parse (or is ``null``)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
