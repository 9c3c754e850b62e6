"""Running the apply script: one EVALSHA per batch (token key + the scope's hashes), one pipeline."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import redis.asyncio
from redis.exceptions import NoScriptError

from policies import keys
from policies.pending import Batch
from policies.redis_codec import APPLY_LUA

ALREADY_APPLIED = -1
"""What the script returns for a batch whose token was already set (nothing changed)."""


class ApplyScript:
    """The apply script on ``client``; tokens live ``token_ttl_s`` (rounded up to seconds)."""

    def __init__(self, client: redis.asyncio.Redis, prefix: str, token_ttl_s: float) -> None:
        if not token_ttl_s >= 1:
            raise ValueError(f"token TTL must be >= 1 s, got {token_ttl_s}")
        self._client = client
        self._prefix = prefix
        self._ttl = str(math.ceil(token_ttl_s))
        self._script = client.register_script(APPLY_LUA)

    async def run(self, batches: Sequence[Batch], now: float, half_life_s: float | None) -> list[Any]:
        """Per batch: repaired-cell count, ALREADY_APPLIED, or the error Redis answered.

        Raises what the client raises when Redis does not answer (some batches may be applied).
        A script missing from Redis (restart, SCRIPT FLUSH) is loaded and only those rerun.
        """
        results = await self._evalsha(batches, now, half_life_s)
        missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if missing:
            self._script.sha = await self._client.script_load(APPLY_LUA)
            again = await self._evalsha([batches[i] for i in missing], now, half_life_s)
            for i, result in zip(missing, again, strict=True):
                results[i] = result
        return results

    async def _evalsha(self, batches: Sequence[Batch], now: float, half_life_s: float | None) -> list[Any]:
        head = [repr(now), repr(half_life_s or 0.0), self._ttl]
        async with self._client.pipeline(transaction=False) as pipe:
            for batch in batches:
                rows = batch.at(now, half_life_s)
                names = [keys.post_key(self._prefix, table) for table in rows]
                args = [a for row in rows.values() for a in _cells(row)]
                token = keys.token_key(self._prefix, batch.scope, batch.token)
                pipe.evalsha(self._script.sha, 1 + len(names), token, *names, *head, *args)
            return await pipe.execute(raise_on_error=False)


def _cells(row: dict[str, tuple[float, float]]) -> list[str]:
    return [str(len(row)), *(a for m, (s, f) in row.items() for a in (m, repr(s), repr(f)))]
