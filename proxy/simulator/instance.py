"""Minimal JSON values satisfying a JSON schema: what a simulated model "generates".

``minimal_instance(schema)`` supports the subset structured outputs and tool schemas use:
``type`` (a name or a list; the first non-null one wins), ``enum``, ``const``, ``default``,
``properties`` + ``required`` (only required properties are filled), ``items`` and
``prefixItems`` with ``minItems``/``maxItems``, ``minimum``/``maximum`` (and the exclusive
forms), ``minLength``/``maxLength``, common string ``format`` values, ``anyOf``/``oneOf``
(the first non-null branch), ``allOf`` (merged) and local ``$ref`` (``#/$defs/...``,
``#/definitions/...``). A schema without a type is an object when it has properties, else
a string. Unsupported keywords (``pattern``, ``not``, ...) are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

MAX_DEPTH = 32
FORMATS: Mapping[str, str] = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "00:00:00",
    "email": "user@example.com",
    "uri": "https://example.com",
    "url": "https://example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "hostname": "example.com",
}


def minimal_instance(schema: Any) -> Any:
    """A small value satisfying ``schema`` (see the module docstring for the subset)."""
    root = schema if isinstance(schema, Mapping) else {}
    return _Generator(root).value(root, "value", 0)


def resolve(schema: Any, root: Mapping[str, Any]) -> Mapping[str, Any]:
    """``schema`` with local ``$ref`` followed and ``allOf`` merged ({} when not a mapping)."""
    current: Mapping[str, Any] = schema if isinstance(schema, Mapping) else {}
    for _ in range(MAX_DEPTH):
        ref = current.get("$ref")
        if not isinstance(ref, str):
            break
        current = {**_lookup(ref, root), **{k: v for k, v in current.items() if k != "$ref"}}
    parts = current.get("allOf")
    if not isinstance(parts, list):
        return current
    merged: dict[str, Any] = {k: v for k, v in current.items() if k != "allOf"}
    for part in parts:
        merged = _merge(merged, resolve(part, root))
    return merged


def _lookup(ref: str, root: Mapping[str, Any]) -> Mapping[str, Any]:
    """The schema a local JSON pointer names ({} for remote or unknown references)."""
    if not ref.startswith("#"):
        return {}
    node: Any = root
    for token in (t for t in ref[1:].split("/") if t):
        key = token.replace("~1", "/").replace("~0", "~")
        node = node.get(key) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else {}


def _merge(left: Mapping[str, Any], right: Mapping[str, Any]) -> dict[str, Any]:
    """Two schemas combined: properties and required lists joined, other keys right wins."""
    merged = {**left, **right}
    for key in ("properties", "required"):
        if key in left and key in right:
            joined = {**left[key], **right[key]} if key == "properties" else [*left[key], *right[key]]
            merged[key] = joined
    return merged


def type_names(schema: Mapping[str, Any]) -> list[str]:
    """The type names a schema allows, in order (a missing type gives [])."""
    kind = schema.get("type")
    if isinstance(kind, str):
        return [kind]
    return [k for k in kind if isinstance(k, str)] if isinstance(kind, list) else []


class _Generator:
    """Walks one schema document (``root`` is where ``$ref`` pointers start)."""

    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root

    def value(self, raw: Any, name: str, depth: int) -> Any:
        """The value for ``raw`` (``name``: the property it is for, used in strings)."""
        schema = resolve(raw, self.root)
        if depth > MAX_DEPTH:
            return None
        for key in ("const", "default"):
            if key in schema:
                return schema[key]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return enum[0]
        branches = schema.get("anyOf", schema.get("oneOf"))
        if isinstance(branches, list) and branches:
            return self.value(_first_non_null(branches, self.root), name, depth + 1)
        return self.typed(schema, _chosen_type(schema), name, depth)

    def typed(self, schema: Mapping[str, Any], kind: str, name: str, depth: int) -> Any:
        """The value of type ``kind`` for ``schema``."""
        if kind == "object":
            return self.object(schema, depth)
        if kind == "array":
            return self.array(schema, name, depth)
        if kind in ("integer", "number"):
            return _number(schema, integer=kind == "integer")
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return _string(schema, name)

    def object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        """An object with every required property (and at least ``minProperties`` of them)."""
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        required = [k for k in schema.get("required") or [] if isinstance(k, str)]
        wanted = int(schema.get("minProperties") or 0)
        extra = [k for k in properties if k not in required][: max(0, wanted - len(required))]
        return {key: self.value(properties.get(key, {}), key, depth + 1) for key in [*required, *extra]}

    def array(self, schema: Mapping[str, Any], name: str, depth: int) -> list[Any]:
        """A list of one item (or ``minItems``, bounded by ``maxItems``)."""
        prefix = schema.get("prefixItems")
        prefix = prefix if isinstance(prefix, list) else []
        count = max(int(schema.get("minItems") or 0), 1, len(prefix))
        maximum = schema.get("maxItems")
        if isinstance(maximum, int):
            count = min(count, maximum)
        items = schema.get("items")
        shapes = [prefix[i] if i < len(prefix) else items for i in range(count)]
        return [self.value(shape if isinstance(shape, Mapping) else {}, name, depth + 1) for shape in shapes]


def _first_non_null(branches: list[Any], root: Mapping[str, Any]) -> Any:
    """The first branch that is not just ``{"type": "null"}`` (else the first)."""
    for branch in branches:
        if type_names(resolve(branch, root)) != ["null"]:
            return branch
    return branches[0]


def _chosen_type(schema: Mapping[str, Any]) -> str:
    """The type to generate: the first non-null listed one, else inferred from keywords."""
    names = type_names(schema)
    for name in names:
        if name != "null":
            return name
    if names:
        return "null"
    if "properties" in schema or "required" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return "string"


def _number(schema: Mapping[str, Any], *, integer: bool) -> int | float:
    """1, or the low bound when there is one, kept within the high bound."""
    low = _bound(schema, "minimum", "exclusiveMinimum", integer=integer, up=True)
    high = _bound(schema, "maximum", "exclusiveMaximum", integer=integer, up=False)
    value = 1.0 if low is None else low
    if high is not None and value > high:
        value = high if low is None or integer else (low + high) / 2
    return int(value) if integer else value


def _bound(
    schema: Mapping[str, Any], inclusive: str, exclusive: str, *, integer: bool, up: bool
) -> float | None:
    """The tightest allowed value at the ``inclusive``/``exclusive`` keyword pair, or None."""
    found: list[float] = []
    edge = _number_at(schema, inclusive)
    if edge is not None:
        found.append(float(math.ceil(edge) if up else math.floor(edge)) if integer else edge)
    edge = _number_at(schema, exclusive)
    if edge is not None and integer:
        found.append(float(math.floor(edge) + 1 if up else math.ceil(edge) - 1))
    elif edge is not None:
        found.append(edge + 0.5 if up else edge - 0.5)
    if not found:
        return None
    return max(found) if up else min(found)


def _number_at(schema: Mapping[str, Any], key: str) -> float | None:
    """``schema[key]`` when it is a number (not a boolean), else None."""
    value = schema.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _string(schema: Mapping[str, Any], name: str) -> str:
    """A string naming the property, or a sample of its ``format``, sized to the length bounds."""
    fmt = schema.get("format")
    text = FORMATS.get(fmt, f"simulated {name}") if isinstance(fmt, str) else f"simulated {name}"
    low, high = schema.get("minLength"), schema.get("maxLength")
    if isinstance(low, int) and len(text) < low:
        text = text + "x" * (low - len(text))
    if isinstance(high, int) and len(text) > high:
        text = text[:high]
    return text
