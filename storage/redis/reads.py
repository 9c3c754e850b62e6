"""A snapshot read in as few Redis commands as the Cluster slots allow.

The tables of one read are grouped by hash slot: a lone hash is one HMGET; two or more hashes
of one slot (an agent's tables share the ``{agent}`` tag) are one EVALSHA of READ_LUA, which
answers each hash's HMGET in order. All commands go in one pipeline. A hash that is not a
hash (WRONGTYPE) answers its own error in its place, as HMGET would.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.crc import key_slot
from redis.exceptions import NoScriptError, ResponseError

from policies.base import Table
from storage.redis import keys
from storage.redis.client import Client
from storage.redis.read_cache import ReadKey

READ_LUA = """
-- KEYS: hashes of one Cluster slot; ARGV: field names. Per hash: HMGET's reply, or its error.
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.pcall('HMGET', key, unpack(ARGV))
end
return out
"""
ARGS_LIMIT = 4096
"""Distinct (tables, models) reads whose groups ReadArgs keeps before it starts over."""

ReadGroup = tuple[tuple[int, ...], list[bytes], list[bytes]]
"""One command of a read: the positions of its tables in the read, their hash keys (one
Cluster slot), and the field names, encoded."""


class ReadArgs:
    """The groups of a read, built and encoded once per (tables, models)."""

    def __init__(self, prefix: str, limit: int = ARGS_LIMIT) -> None:
        self._prefix = prefix
        self._limit = limit
        self._groups: dict[ReadKey, list[ReadGroup]] = {}

    def of(self, tables: Sequence[Table], models: Sequence[str]) -> list[ReadGroup]:
        key = (tuple(tables), tuple(models))
        found = self._groups.get(key)
        if found is None:
            if len(self._groups) >= self._limit:
                self._groups.clear()
            found = self._groups[key] = self._build(tables, models)
        return found

    def _build(self, tables: Sequence[Table], models: Sequence[str]) -> list[ReadGroup]:
        names = [name.encode() for model in models for name in keys.fields(model)]
        hashes = [keys.post_key(self._prefix, table).encode() for table in tables]
        by_slot: dict[int, list[int]] = {}
        for i, name in enumerate(hashes):
            by_slot.setdefault(key_slot(name), []).append(i)
        return [(tuple(at), [hashes[i] for i in at], names) for at in by_slot.values()]


class SnapshotRead:
    """Sends a read's groups on ``client``; a script missing from Redis is loaded and the read
    sent once more."""

    def __init__(self, client: Client, prefix: str) -> None:
        self._client = client
        self._args = ReadArgs(prefix)
        self._script = client.register_script(READ_LUA)

    async def replies(self, tables: Sequence[Table], models: Sequence[str]) -> list[Any]:
        """Per table, in order: its HMGET reply (3 values per model) or the ResponseError
        Redis answered for it. Raises what the client raises when Redis does not answer."""
        groups = self._args.of(tables, models)
        answers = await self._send(groups)
        if any(isinstance(answer, NoScriptError) for answer in answers):
            self._script.sha = await self._client.script_load(READ_LUA)
            answers = await self._send(groups)
        out: list[Any] = [None] * len(tables)
        for (at, _, _), answer in zip(groups, answers, strict=True):
            if len(at) == 1:
                out[at[0]] = answer
            else:
                each = [answer] * len(at) if isinstance(answer, ResponseError) else answer
                for i, reply in zip(at, each, strict=True):
                    out[i] = reply
        return out

    async def _send(self, groups: list[ReadGroup]) -> list[Any]:
        async with self._client.pipeline(transaction=False) as pipe:
            for _, hashes, names in groups:
                if len(hashes) == 1:
                    pipe.hmget(hashes[0], names)
                else:
                    pipe.evalsha(self._script.sha, len(hashes), *hashes, *names)
            return await pipe.execute(raise_on_error=False)
