"""Small pure helpers for combining (discounted) evidence masses, on plain floats (the
policy's hot path builds no objects per candidate beyond the result pair)."""

from __future__ import annotations

from policies.base import Evidence

VOIDED_MARGIN = 1.0
"""Observations by which the pool must hold less than the agent to read as voided (the pool
is the sum of every agent's evidence, so it never does otherwise; rounding aside)."""


def hierarchical(
    pooled: Evidence | None,
    own: Evidence | None,
    cell: Evidence | None,
    pool_cap: float,
    context_cap: float | None,
    *,
    nested_pool: bool = False,
    voided_pool: bool = True,
) -> tuple[float, float]:
    """(successes, failures) of one model's hierarchical evidence (policies.thompson)::

        others = cap(pooled - own, pool_cap)   (cap(pooled, pool_cap) if pooled < own, voided_pool)
        agent  = others + own                                  (context_cap None)
        cell   = others + cap(own - cell, context_cap) + cell  (otherwise)
        cell   = cap(others + own - cell, context_cap) + cell  (nested_pool)

    ``cap`` scales a mass down to at most that total, mean kept; a difference is floored at 0
    per mass. Missing evidence is none. The context cap limits what the agent's other contexts
    say about this one; the pool keeps its own learnt cap (``nested_pool`` caps both together).
    With ``voided_pool``, a pool holding less evidence than the agent (in total, by
    ``VOIDED_MARGIN``) was voided since the agent learnt (a re-try round, policies.probes):
    what it holds is newer than the agent's own and is read as it is, where subtracting the
    agent's stale evidence would leave nothing of it.
    """
    own_s, own_f = (own.successes, own.failures) if own is not None else (0.0, 0.0)
    s = f = 0.0
    if pooled is not None:
        s, f = pooled.successes, pooled.failures
        if not (voided_pool and pool_voided(s + f, own_s + own_f)):
            s, f = max(s - own_s, 0.0), max(f - own_f, 0.0)
        s, f = _capped(s, f, pool_cap)
    if context_cap is None:
        return s + own_s, f + own_f
    cell_s, cell_f = (cell.successes, cell.failures) if cell is not None else (0.0, 0.0)
    rest_s, rest_f = max(own_s - cell_s, 0.0), max(own_f - cell_f, 0.0)
    if nested_pool:
        s, f = _capped(s + rest_s, f + rest_f, context_cap)
        return s + cell_s, f + cell_f
    rest_s, rest_f = _capped(rest_s, rest_f, context_cap)
    return s + rest_s + cell_s, f + rest_f + cell_f


def pool_voided(pooled_total: float, own_total: float) -> bool:
    """Whether a pool holding ``pooled_total`` observations of a model was voided since an
    agent holding ``own_total`` of them learnt it (it holds less, by ``VOIDED_MARGIN``)."""
    return pooled_total + VOIDED_MARGIN < own_total


def _capped(s: float, f: float, cap: float) -> tuple[float, float]:
    """(s, f) scaled down to a total of at most ``cap``, mean kept."""
    total = s + f
    if total > cap and total > 0.0:
        shrink = cap / total
        return s * shrink, f * shrink
    return s, f


def clipped_reward(reward: float) -> float:
    """``reward`` clipped into [0, 1]; NaN counts as 0 (a failure)."""
    if not reward >= 0.0:
        return 0.0
    return min(reward, 1.0)
