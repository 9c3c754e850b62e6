"""Redis key schema for posterior tables.

One hash per table: ``{prefix}:{<scope>}:post:<context>`` with fields
``<model>:s``, ``<model>:f`` (evidence masses) and ``<model>:t`` (time of last decay).
The braces are a Redis Cluster hash tag, so all of one scope's keys share a slot.

Scope and context are percent-encoded: every character outside ``A-Z a-z 0-9 - _ . : @ /``
becomes ``%XX`` (UTF-8), so braces and glob characters never reach a key. The pooled scope
``*`` therefore reads ``%2A``. The agent-level context ``""`` reads ``_all``; a real
context starting with ``_`` has that underscore encoded (``%5F``), so names never collide.

Sequence keys of writers (see storage.redis.sequence): ``{prefix}:seq:{<tag>}:<writer>``, where
``<tag>`` is a short tag of the Cluster slot of the keys the writer's calls change.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import quote, unquote

from policies.base import Table
from policies.memo import BoundedMemo

_PREFIX = re.compile(r"[A-Za-z0-9\-_.:]{1,32}")
_SAFE = "-_.:@/"
ALL_CONTEXT = "_all"
FIELD_SUFFIXES = ("s", "f", "t")


def check_prefix(prefix: str) -> str:
    """``prefix`` if it is safe in keys and SCAN patterns, else ValueError."""
    if _PREFIX.fullmatch(prefix) is None:
        raise ValueError(f"key prefix must match {_PREFIX.pattern}, got {prefix!r}")
    return prefix


def encode_scope(scope: str) -> str:
    """Scope as it appears inside the hash tag (no braces, no glob characters)."""
    return quote(scope, safe=_SAFE)


def encode_context(context: str) -> str:
    """Context as it appears after ``:post:``."""
    if context == "":
        return ALL_CONTEXT
    encoded = quote(context, safe=_SAFE)
    return "%5F" + encoded[1:] if encoded.startswith("_") else encoded


def decode_context(text: str) -> str:
    """Inverse of :func:`encode_context`."""
    return "" if text == ALL_CONTEXT else unquote(text)


def post_key(prefix: str, table: Table) -> str:
    """The hash key holding ``table``."""
    return f"{prefix}:{{{encode_scope(table.scope)}}}:post:{encode_context(table.context)}"


class PostKeys(BoundedMemo[Table, str]):
    """``post_key`` of each table under one prefix, remembered: the same few tables are
    written over and over. At most ``limit`` are kept."""

    __slots__ = ()

    def __init__(self, prefix: str, limit: int = 10_000) -> None:
        super().__init__(functools.partial(post_key, prefix), limit)


def post_pattern(prefix: str) -> str:
    """SCAN MATCH pattern for every posterior hash under ``prefix``."""
    return f"{prefix}:{{*}}:post:*"


def parse_post_key(prefix: str, key: str) -> Table | None:
    """The table a key holds, or None if it is not a posterior key of ``prefix``."""
    head = prefix + ":{"
    if not key.startswith(head):
        return None
    scope, sep, rest = key[len(head) :].partition("}:post:")
    if not sep or "{" in scope or "}" in scope:
        return None
    return Table(unquote(scope), decode_context(rest))


def fields(model: str) -> tuple[str, str, str]:
    """The ``s``, ``f`` and ``t`` field names of ``model``'s cell."""
    return f"{model}:s", f"{model}:f", f"{model}:t"


def split_field(name: str) -> tuple[str, str] | None:
    """``(model, suffix)`` of a cell field, or None for a foreign field."""
    model, sep, suffix = name.rpartition(":")
    if not sep or not model or suffix not in FIELD_SUFFIXES:
        return None
    return model, suffix
