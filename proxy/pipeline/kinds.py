"""The decision kind a response reports (``x-model-manager-decision``).

Precedence, first that applies:

1. ``pinned``: one candidate (pinned by ``X-Model-Manager-Pin``, the agent's ``pin``, or a
   request naming a single model): nothing was chosen.
2. ``fallback``: the answer (or the stream being relayed) came from a model other than the
   policy's first choice: it failed, or was skipped (resting, at its limit, too small).
3. the policy's kind of its first choice: ``forced-try`` (under ``min_tries``),
   ``explored`` (an exploration draw) or ``sampled``. A request no model answered keeps it.
"""

from __future__ import annotations

from policies.base import Decision, DecisionKind

DECISION_HEADER = "x-model-manager-decision"


def decision_kind(decision: Decision, answered_by: str | None) -> DecisionKind:
    """The kind of ``decision`` once ``answered_by`` (None: no model answered) is known."""
    if len(decision.ranking) == 1:
        return DecisionKind.PINNED
    if answered_by is not None and answered_by != decision.ranking[0]:
        return DecisionKind.FALLBACK
    return decision.kind
