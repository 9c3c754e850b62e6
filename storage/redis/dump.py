"""Listing every posterior table stored under a prefix (for ``model-manager stats``)."""

from __future__ import annotations

from typing import Any

from policies import decay
from policies.base import Evidence
from storage.errors import StoreUnavailable
from storage.redis import keys
from storage.redis.client import Client
from storage.redis.codec import UNAVAILABLE, cell

Dump = dict[str, dict[str, dict[str, Evidence]]]
BATCH = 500


async def dump(
    client: Client, prefix: str, now: float, half_life_s: float | None
) -> tuple[Dump, int]:
    """scope -> context -> model -> evidence decayed to ``now``, and the corrupt cell count.

    Corrupt cells and non-hash keys are left out. Raises StoreUnavailable on outage.
    """
    try:
        names = [k async for k in client.scan_iter(match=keys.post_pattern(prefix), count=1000)]
        hashes = await _hgetall(client, names)
    except UNAVAILABLE as exc:
        raise StoreUnavailable(f"Redis unavailable: {exc!r}") from exc
    out: Dump = {}
    corrupt = 0
    for name, mapping in zip(names, hashes, strict=True):
        table = keys.parse_post_key(prefix, _text(name))
        if table is None or not isinstance(mapping, dict):
            corrupt += table is not None
            continue
        row, bad = _row(mapping, now, half_life_s)
        corrupt += bad
        out.setdefault(table.scope, {})[table.context] = row
    return out, corrupt


async def _hgetall(client: Client, names: list[Any]) -> list[Any]:
    replies: list[Any] = []
    for start in range(0, len(names), BATCH):
        async with client.pipeline(transaction=False) as pipe:
            for name in names[start : start + BATCH]:
                pipe.hgetall(name)
            replies.extend(await pipe.execute(raise_on_error=False))
    return replies


def _row(
    mapping: dict[Any, Any], now: float, half_life_s: float | None
) -> tuple[dict[str, Evidence], int]:
    raw: dict[str, dict[str, Any]] = {}
    for field, value in mapping.items():
        split = keys.split_field(_text(field))
        if split is not None:
            raw.setdefault(split[0], {})[split[1]] = value
    row: dict[str, Evidence] = {}
    bad = 0
    for model, parts in raw.items():
        s, f, t, corrupt = cell(parts.get("s"), parts.get("f"), parts.get("t"), now)
        bad += corrupt
        if not corrupt:
            row[model] = Evidence(*decay.decayed(s, f, t, now, half_life_s))
    return row, bad


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
