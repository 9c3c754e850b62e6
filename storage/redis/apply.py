"""The posterior store's calls for the SequencedWriter: loose deltas merged into one batch per
scope, each one EVALSHA of the apply script (seq key + the scope's hashes), in one pipeline."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from redis.exceptions import NoScriptError

from policies.base import Table
from storage.redis import keys, pending
from storage.redis.client import Client
from storage.redis.codec import APPLY_LUA, UNAVAILABLE
from storage.redis.pending import Batch, Pending
from storage.redis.sequence import NOT_APPLIED, Sequencer


class ApplyScript:
    """The apply script on ``client``, guarded by ``sequencer``'s seqs (see storage.redis.sequence);
    ``repaired_cells`` counts the corrupt cells the applied scripts reset."""

    unanswered = UNAVAILABLE

    def __init__(
        self,
        client: Client,
        prefix: str,
        sequencer: Sequencer,
        half_life_s: float | None,
        key_ttl_s: float | None = None,
    ) -> None:
        """``key_ttl_s``: every written hash expires that long after its last write (None: never)."""
        self._client = client
        self._key = keys.PostKeys(prefix)
        self._seq = sequencer
        self._half_life = half_life_s
        self._ttl_ms = str(int(key_ttl_s * 1000)) if key_ttl_s else "0"
        self._script = client.register_script(APPLY_LUA)
        self.repaired_cells = 0

    def key(self, item: Pending) -> tuple[Table, str]:
        return pending.key(item)

    def merge(self, older: Pending, newer: Pending) -> Pending:
        return pending.coalesce(older, newer, self._half_life)

    def size(self, item: Pending) -> int:
        """Deltas are sums: 0."""
        return 0

    def shed(self, item: Pending) -> Pending | None:
        """Never called: deltas are sums."""
        return item

    def form(self, items: list[Pending], now: float, born: float, number: Callable[[], int]) -> list[Batch]:
        """Loose deltas merged per cell at ``now``, one batch per scope."""
        return pending.form(items, now, self._half_life, born, number)

    def loose(self, call: Batch) -> list[Pending]:
        return call.loose()

    def applied(self, call: Batch, reply: Any) -> None:
        self.repaired_cells += int(reply)

    def follow_ups(self) -> list[Pending]:
        """Posterior batches ask for nothing more."""
        return []

    async def run(self, calls: Sequence[Batch], now: float) -> list[Any]:
        """Per batch: repaired-cell count, ALREADY_APPLIED, NOT_APPLIED, or the error Redis
        answered (the last two: not applied); each batch decayed from its time to ``now``.

        Raises what the client raises when Redis does not answer (some batches may be applied).
        A script missing from Redis (restart, SCRIPT FLUSH) is loaded and the batches it left
        unapplied (NOSCRIPT, and NOT_APPLIED after it) run again under the same seqs.
        """
        results = await self._evalsha(calls, now, self._half_life)
        if any(isinstance(r, NoScriptError) for r in results):
            again = [i for i, r in enumerate(results) if isinstance(r, NoScriptError) or r == NOT_APPLIED]
            self._script.sha = await self._client.script_load(APPLY_LUA)
            rerun = await self._evalsha([calls[i] for i in again], now, self._half_life)
            for i, result in zip(again, rerun, strict=True):
                results[i] = result
        return results

    async def _evalsha(self, batches: Sequence[Batch], now: float, half_life_s: float | None) -> list[Any]:
        head = [repr(now), repr(half_life_s or 0.0), self._ttl_ms]
        slots = [(self._key(Table(b.scope)), b.seq) for b in batches]
        async with self._client.pipeline(transaction=False) as pipe:
            for batch, guard in zip(batches, self._seq.guards(slots), strict=True):
                rows = batch.at(now, half_life_s)
                names = [self._key(table) for table in rows]
                args = [a for row in rows.values() for a in _cells(row)]
                pipe.evalsha(self._script.sha, 1 + len(names), guard[0], *names, *guard[1:], *head, *args)
            return await pipe.execute(raise_on_error=False)


def _cells(row: dict[str, tuple[float, float]]) -> list[str]:
    return [str(len(row)), *(a for m, (s, f) in row.items() for a in (m, repr(s), repr(f)))]
