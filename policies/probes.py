"""Bounded re-tries of a model the change detector dropped (policies.thompson).

A model whose cell the detector replaced stops being chosen; if it recovers later (an outage
ends), nobody would learn it. One table per finest cell (``probe_memory``) keeps, per model,
the cell's use count at the model's last use (``successes``) and the re-try uses still owed to
it (``failures``). The cell's use count is the largest last use among the candidates, so a
model's staleness is the cell's uses since its own last one. A detected drop owes the model a
few rounds of ``uses`` consecutive re-tries; a round is due once the model has not been used
for ``after`` uses of the cell. A round judges the model on its answers alone: at its start
this agent's and the pool's evidence about the model is void (policies.thompson.reset), so a
recovered model is sampled again and a still-failing one holds a few bad observations until
the next round. Stationary cells are untouched: nothing is owed unless the detector fired.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from policies.base import Delta, Evidence, Table, side_table

PROBES = "~probes"
"""Context (prefix) of the re-try tables: ``~probes`` or ``~probes:<context>``."""


def probe_memory(finest: Table) -> Table:
    """The re-try table of the finest cell ``finest`` (same scope)."""
    return side_table(finest, PROBES)


def cell_uses(memory: Mapping[str, Evidence], models: Sequence[str]) -> float:
    """The cell's use count as far as ``models`` tell: the latest last use among them."""
    latest = 0.0
    for model in models:
        entry = memory.get(model)
        if entry is not None and entry.successes > latest:
            latest = entry.successes
    return latest


def owed(entry: Evidence | None) -> int:
    """Re-try uses still owed to a model (its entry's ``failures``, rounded)."""
    return 0 if entry is None else round(entry.failures)


def due(
    memory: Mapping[str, Evidence], models: Sequence[str], after: float, uses: int
) -> tuple[int, ...]:
    """Indices of ``models`` owed a re-try use and either unused for at least ``after`` uses
    of the cell (a round starts) or within a round of ``uses`` consecutive re-tries."""
    if not memory:
        return ()
    now = cell_uses(memory, models)
    found = []
    for index, model in enumerate(models):
        entry = memory.get(model)
        left = owed(entry)
        if entry is None or left < 1:
            continue
        if left % uses != 0 or now - entry.successes >= after:
            found.append(index)
    return tuple(found)


def starts_round(entry: Evidence | None, uses: int) -> bool:
    """Whether a re-try of a model with this entry starts a round (judged afresh)."""
    return owed(entry) % uses == 0


def use_delta(
    table: Table, memory: Mapping[str, Evidence], models: Sequence[str], model: str, *,
    owe: int, retried: bool, gap_cap: float = float("inf"),
) -> Delta:
    """The re-try table's change when ``model`` is used: its last use becomes the cell's next
    use count, moving by at most ``gap_cap``; ``owe`` > 0 (a detected drop) sets the re-try
    uses owed, a re-try spends one. The cap matters under concurrency: requests decided on
    one snapshot each add the same gap, a model's last use then overshoots, raises the
    cell's count (the largest last use) and the next gaps with it; uncapped, that grows
    geometrically to inf (measured: 1e59 after 300 bursts of 8)."""
    entry = memory.get(model)
    last, pending = (entry.successes, entry.failures) if entry is not None else (0.0, 0.0)
    now = cell_uses(memory, models) + 1.0
    if owe > 0:
        change = owe - pending
    elif retried:
        change = -min(1.0, pending)
    else:
        change = 0.0
    return Delta(table, model, min(now - last, gap_cap), change)
