"""The posterior store's writes: loose deltas, and the batches they are formed into.

A delta is *loose* until it is sent: loose deltas merge freely. Sending forms them into
batches (one per scope, so one script call in one Redis Cluster slot), numbered in send order
(see ``storage.redis.sequence``). A batch whose reply was lost is *in doubt*: it may have been
applied, so it is only ever resent whole, under the same seq, and never merged with anything
else. A batch Redis answered as not applied (an error reply) becomes loose deltas again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from policies import decay
from policies.base import Delta, Table

Pending = tuple[Delta, float]
"""A delta and the time it was produced (it decays from then until it is written)."""

Merged = dict[Table, dict[str, tuple[float, float]]]
"""Per table, per model: the summed (successes, failures) change, in first-seen order."""


@dataclass(frozen=True, slots=True)
class Batch:
    """Deltas of one scope, merged per cell at time ``t``, sent under sequence number ``seq``.

    ``born`` is the monotonic time the batch was formed (it cannot have been applied earlier).
    """

    seq: int
    scope: str
    rows: Merged
    t: float
    born: float

    @property
    def cells(self) -> int:
        return sum(len(row) for row in self.rows.values())

    def at(self, now: float, half_life_s: float | None) -> Merged:
        """The same changes decayed from ``t`` to ``now`` (identical without a half-life)."""
        k = decay.factor(now - self.t, half_life_s)
        return {table: {m: (k * s, k * f) for m, (s, f) in row.items()} for table, row in self.rows.items()}

    def loose(self) -> list[Pending]:
        """The batch as loose deltas again (one per cell, produced at ``t``)."""
        cells = [(table, m, s, f) for table, row in self.rows.items() for m, (s, f) in row.items()]
        return [(Delta(*cell), self.t) for cell in cells]


def key(item: Pending) -> tuple[Table, str]:
    """The cell a loose delta changes."""
    return item[0].table, item[0].model


def coalesce(older: Pending, newer: Pending, half_life_s: float | None) -> Pending:
    """Two loose deltas of one cell as one, at the later of their times: each is decayed
    from its own time to that one, so the sum decays exactly as the two would (exponential
    forgetting is linear), up to float rounding."""
    (a, ta), (b, tb) = older, newer
    t = max(ta, tb)
    ka, kb = decay.factor(t - ta, half_life_s), decay.factor(t - tb, half_life_s)
    s, f = ka * a.successes + kb * b.successes, ka * a.failures + kb * b.failures
    return Delta(a.table, a.model, s, f), t


def merge(items: Iterable[Pending], now: float, half_life_s: float | None) -> Merged:
    """Sum the deltas per cell, each decayed from its own time to ``now``."""
    out: Merged = {}
    for delta, t in items:
        k = decay.factor(now - t, half_life_s)
        row = out.setdefault(delta.table, {})
        s, f = row.get(delta.model, (0.0, 0.0))
        row[delta.model] = (s + k * delta.successes, f + k * delta.failures)
    return out


def form(
    items: Iterable[Pending], now: float, half_life_s: float | None, born: float, number: Callable[[], int]
) -> list[Batch]:
    """Loose deltas as new batches: merged per cell at ``now``, one per scope, numbered by
    ``number`` in order."""
    scopes: dict[str, Merged] = {}
    for table, row in merge(items, now, half_life_s).items():
        scopes.setdefault(table.scope, {})[table] = row
    return [Batch(number(), scope, rows, now, born) for scope, rows in scopes.items()]
