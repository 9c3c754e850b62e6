"""Why a request went where it did: the ``x-model-manager-explain`` header, on request.

Asked for with ``X-Model-Manager-Explain: true``. The header is one compact JSON object::

    {"kind": "fallback", "model": "m2", "policy": "thompson", "context": "chat",
     "propensity": 0.41,
     "candidates": [{"model": "m1", "mean": 0.62, "sampled": 0.71, "propensity": 0.41}, ...],
     "skipped": [{"model": "m3", "reason": "cooldown"}]}

``propensity`` is the probability that the policy picks its first choice; ``sampled`` the
posterior draw of a sampled decision (null for explored, forced and pinned ones); ``skipped``
the models left out before or while trying (``cooldown``: resting after a 429,
``usage_limit``: at its rpm/tpm, ``context_window``: too small for the prompt,
``unavailable``: configured but left out of routing). At most MAX_CANDIDATES candidates are
listed, in ranking order (``more`` counts the rest), so the header stays well under 8 KB.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from policies.base import Decision, DecisionKind, DecisionRequest, Policy, Snapshot

EXPLAIN_HEADER = "x-model-manager-explain"
"""The request header that asks (``true``) and the response header that answers."""
EXPLAIN_VALUES = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False, "": False}
MAX_CANDIDATES = 20
DIGITS = 4


class SkipReason(StrEnum):
    COOLDOWN = "cooldown"
    USAGE_LIMIT = "usage_limit"
    CONTEXT_WINDOW = "context_window"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class Explanation:
    """What is known about the decision before the first attempt (computed only on request)."""

    policy: str
    context: str
    candidates: tuple[dict[str, Any], ...]
    """In ranking order: model, posterior mean, sampled value, propensity."""
    propensity: float | None
    unavailable: tuple[str, ...]


def explain(
    policy: Policy,
    request: DecisionRequest,
    snapshot: Snapshot,
    decision: Decision,
    *,
    rng: random.Random,
    unavailable: Sequence[str],
) -> Explanation:
    """The explanation of ``decision`` (pure but for ``rng``, used by estimated propensities)."""
    posterior = policy.posterior(request, snapshot)
    draws = dict(zip(request.candidates, decision.draws, strict=False))
    listed = decision.ranking[:MAX_CANDIDATES]
    propensities = {m: _round(policy.propensity(request, snapshot, m, rng, decision)) for m in listed}
    rows = tuple(
        {
            "model": model,
            "mean": _round(posterior[model].mean) if model in posterior else None,
            "sampled": _round(draws[model]) if model in draws else None,
            "propensity": propensities[model],
        }
        for model in listed
    )
    return Explanation(
        policy=policy.name,
        context=request.context,
        candidates=rows,
        propensity=propensities.get(decision.ranking[0]),
        unavailable=tuple(unavailable),
    )


def payload(
    explanation: Explanation,
    kind: DecisionKind,
    model: str | None,
    skipped: Sequence[tuple[str, SkipReason]],
    ranked: int,
) -> dict[str, Any]:
    """The explanation as of now: the kind, the answering model and the skips so far."""
    body: dict[str, Any] = {
        "kind": kind.value,
        "model": model,
        "policy": explanation.policy,
        "context": explanation.context,
        "propensity": explanation.propensity,
        "candidates": list(explanation.candidates),
        "skipped": [{"model": name, "reason": reason.value} for name, reason in skipped]
        + [{"model": name, "reason": SkipReason.UNAVAILABLE.value} for name in explanation.unavailable],
    }
    if ranked > len(explanation.candidates):
        body["more"] = ranked - len(explanation.candidates)
    return body


def header_value(body: Mapping[str, Any]) -> str:
    """Compact JSON, ASCII only (model names are restricted to ASCII: proxy.wire.names)."""
    return orjson.dumps(body).decode("ascii", errors="replace")


def wants_explanation(value: str) -> bool:
    """Whether ``X-Model-Manager-Explain`` asks for one; unknown values count as no."""
    return EXPLAIN_VALUES.get(value.strip().lower(), False)


def _round(value: float) -> float:
    return round(value, DIGITS)
