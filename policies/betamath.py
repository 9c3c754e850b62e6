"""Small pure helpers for combining Beta priors with (discounted) evidence."""

from __future__ import annotations

from policies.base import PRIOR_FLOOR, Beta, Evidence

NO_EVIDENCE = Evidence()


def capped(evidence: Evidence, cap: float) -> Evidence:
    """``evidence`` scaled down so its total is at most ``cap`` (mean unchanged)."""
    total = evidence.total
    if total <= cap or total <= 0.0:
        return evidence
    scale = cap / total
    return Evidence(evidence.successes * scale, evidence.failures * scale)


def added(first: Evidence, second: Evidence) -> Evidence:
    """The sum of two evidence masses."""
    return Evidence(first.successes + second.successes, first.failures + second.failures)


def minus(whole: Evidence, part: Evidence) -> Evidence:
    """``whole`` without ``part`` (evidence recorded elsewhere), each mass floored at 0."""
    return Evidence(
        max(whole.successes - part.successes, 0.0), max(whole.failures - part.failures, 0.0)
    )


def posterior(prior: Beta, evidence: Evidence) -> Beta:
    """``prior`` plus ``evidence``, each parameter floored at PRIOR_FLOOR."""
    return Beta(
        max(prior.alpha + evidence.successes, PRIOR_FLOOR),
        max(prior.beta + evidence.failures, PRIOR_FLOOR),
    )


def clipped_reward(reward: float) -> float:
    """``reward`` clipped into [0, 1]; NaN counts as 0 (a failure)."""
    if not reward >= 0.0:
        return 0.0
    return min(reward, 1.0)
