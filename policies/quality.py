"""Heuristic quality of a successful response, in [0, 1].

Starts at 1 and subtracts a penalty for each problem found (QualityWeights):

- ``empty``: no text (None, empty or whitespace) and no tool calls; returns at once
- ``truncated``: finish_reason == "length"
- ``refusal``: refusal phrasing near the start ("I can't help with", "As an AI", ...)
- ``invalid_json``: JSON was requested and the text does not parse as JSON
- ``bad_tool_call``: times the share of tool calls whose arguments do not parse as
  JSON, or (when schemas are given) name an unknown tool or break its schema

The result is clipped at 0. With ``enabled=False`` every response scores 1.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

REFUSALS = (
    "i can't help with",
    "i cannot help with",
    "i can't assist",
    "i cannot assist",
    "i'm unable to",
    "i am unable to",
    "i'm not able to",
    "i won't be able to",
    "as an ai",
    "i'm sorry, but i can",
    "i apologize, but i can",
)
REFUSAL_SCAN_CHARS = 300


@dataclass(frozen=True, slots=True)
class QualityInput:
    """The parts of a response (and its request) the heuristic looks at.

    ``tool_calls`` are (name, arguments JSON string) pairs; ``tool_schemas`` maps
    each offered tool's name to its JSON schema "parameters" (None: names unchecked).
    """

    text: str | None
    finish_reason: str | None = "stop"
    tool_calls: tuple[tuple[str, str], ...] = ()
    wants_json: bool = False
    tool_schemas: Mapping[str, Mapping[str, object]] | None = None


@dataclass(frozen=True, slots=True)
class QualityWeights:
    """Penalty per problem (each in [0, 1]); ``enabled=False`` turns the heuristic off."""

    enabled: bool = True
    empty: float = 1.0
    truncated: float = 0.3
    refusal: float = 0.6
    invalid_json: float = 0.6
    bad_tool_call: float = 0.6

    def __post_init__(self) -> None:
        """Raise ValueError for a penalty outside [0, 1]."""
        for name in ("empty", "truncated", "refusal", "invalid_json", "bad_tool_call"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"quality penalty {name} must be within [0, 1], got {value}")


def assess_quality(response: QualityInput, weights: QualityWeights | None = None) -> float:
    """Quality in [0, 1] of a successful ``response`` (see the module docstring)."""
    w = weights or QualityWeights()
    if not w.enabled:
        return 1.0
    text = response.text if isinstance(response.text, str) else ""
    if not text.strip() and not response.tool_calls:
        return max(1.0 - w.empty, 0.0)
    penalty = w.truncated if response.finish_reason == "length" else 0.0
    penalty += w.refusal if is_refusal(text) else 0.0
    penalty += w.invalid_json if response.wants_json and not _parses(text) else 0.0
    penalty += w.bad_tool_call * bad_tool_call_share(response.tool_calls, response.tool_schemas)
    return max(1.0 - penalty, 0.0)


def is_refusal(text: str) -> bool:
    """Whether the start of ``text`` reads like a refusal."""
    head = text[:REFUSAL_SCAN_CHARS].lower().replace("\u2019", "'")
    return any(phrase in head for phrase in REFUSALS)


def bad_tool_call_share(
    calls: Sequence[tuple[str, str]], schemas: Mapping[str, Mapping[str, object]] | None
) -> float:
    """Share in [0, 1] of ``calls`` that are malformed (0 when there are none)."""
    if not calls:
        return 0.0
    bad = sum(1 for name, arguments in calls if not _good_call(name, arguments, schemas))
    return bad / len(calls)


def _good_call(
    name: str, arguments: str, schemas: Mapping[str, Mapping[str, object]] | None
) -> bool:
    try:
        parsed = json.loads(arguments)
    except (TypeError, ValueError):
        return False
    if schemas is None:
        return True
    schema = schemas.get(name)
    return schema is not None and matches_schema(parsed, schema)


def _parses(text: str) -> bool:
    try:
        json.loads(_strip_fence(text))
    except ValueError:
        return False
    return True


def _strip_fence(text: str) -> str:
    """``text`` without a surrounding markdown code fence (```json ... ```)."""
    stripped = text.strip()
    if not stripped.startswith("```"):
        return stripped
    body = stripped.split("\n", 1)[1] if "\n" in stripped else ""
    return body.rsplit("```", 1)[0]


# A small JSON-schema subset for tool-call arguments: type (a name or a list),
# required, properties (recursively), additionalProperties: false, enum, items.

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


def matches_schema(value: object, schema: Mapping[str, object]) -> bool:
    """Whether ``value`` satisfies the supported subset of ``schema``."""
    if not isinstance(schema, Mapping):
        return True
    if not _type_ok(value, schema.get("type")):
        return False
    enum = schema.get("enum")
    if isinstance(enum, list) and value not in enum:
        return False
    if isinstance(value, dict):
        return _object_ok(value, schema)
    if isinstance(value, list):
        items = schema.get("items")
        return not isinstance(items, Mapping) or all(matches_schema(v, items) for v in value)
    return True


def _type_ok(value: object, expected: object) -> bool:
    if expected is None:
        return True
    names = expected if isinstance(expected, list) else [expected]
    return any(_is_type(value, name) for name in names if isinstance(name, str))


def _is_type(value: object, name: str) -> bool:
    if isinstance(value, bool) and name in ("integer", "number"):
        return False
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES.get(name, (object,)))


def _object_ok(value: dict[object, object], schema: Mapping[str, object]) -> bool:
    required = schema.get("required")
    if isinstance(required, list) and any(key not in value for key in required):
        return False
    properties = schema.get("properties")
    properties = properties if isinstance(properties, Mapping) else {}
    if schema.get("additionalProperties") is False and any(k not in properties for k in value):
        return False
    return all(
        matches_schema(item, properties[key])
        for key, item in value.items()
        if key in properties and isinstance(properties[key], Mapping)
    )
