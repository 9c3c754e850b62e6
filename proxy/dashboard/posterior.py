"""Beta posteriors as the agent page draws them: density curves and 90% intervals."""

from __future__ import annotations

import math
from collections.abc import Mapping

from policies.base import Beta, Evidence
from policies.interval import credible_interval

CURVE_POINTS = 121
WIDE_LEVEL = 0.998
"""The curves span the union of every model's interval at this level."""


def posterior(prior: tuple[float, float], evidence: Evidence) -> Beta:
    """Prior plus evidence (what the router samples from for one table)."""
    return Beta(*prior).plus(evidence)


def density(beta: Beta, x: float) -> float:
    """The Beta pdf at ``x`` (0 outside (0, 1))."""
    if not 0.0 < x < 1.0:
        return 0.0
    log_pdf = (
        math.lgamma(beta.alpha + beta.beta) - math.lgamma(beta.alpha) - math.lgamma(beta.beta)
        + (beta.alpha - 1.0) * math.log(x) + (beta.beta - 1.0) * math.log1p(-x)
    )
    return math.exp(log_pdf)


def curves(betas: Mapping[str, Beta]) -> tuple[list[float], dict[str, list[float]]]:
    """Shared x grid over the models' wide intervals, and each model's density on it."""
    if not betas:
        return [], {}
    spans = [credible_interval(b, WIDE_LEVEL) for b in betas.values()]
    low, high = min(s[0] for s in spans), max(s[1] for s in spans)
    if high - low < 1e-6:
        low, high = max(low - 0.01, 0.0), min(high + 0.01, 1.0)
    grid = [low + (high - low) * i / (CURVE_POINTS - 1) for i in range(CURVE_POINTS)]
    return [round(x, 6) for x in grid], {m: [round(density(b, x), 6) for x in grid] for m, b in betas.items()}


def intervals(betas: Mapping[str, Beta]) -> list[dict[str, float | str]]:
    """Per model: mean and the 90% equal-tailed interval, best mean first."""
    rows: list[dict[str, float | str]] = []
    for model, beta in sorted(betas.items(), key=lambda item: -item[1].mean):
        low, high = credible_interval(beta)
        rows.append({"model": model, "mean": beta.mean, "low": low, "high": high,
                     "alpha": beta.alpha, "beta": beta.beta})
    return rows

