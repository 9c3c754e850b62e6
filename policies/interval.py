"""Credible intervals of a Beta posterior (regularized incomplete beta, no SciPy)."""

from __future__ import annotations

import math

from policies.base import Beta

_EPS = 1e-12
_TINY = 1e-300


def beta_cdf(x: float, alpha: float, beta: float) -> float:
    """P(X <= x) for X ~ Beta(alpha, beta) (Numerical Recipes' continued fraction)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(alpha + beta) - math.lgamma(alpha) - math.lgamma(beta)
        + alpha * math.log(x) + beta * math.log1p(-x)
    )
    if x < (alpha + 1.0) / (alpha + beta + 2.0):
        return math.exp(log_front) * _fraction(x, alpha, beta) / alpha
    return 1.0 - math.exp(log_front) * _fraction(1.0 - x, beta, alpha) / beta


def beta_quantile(p: float, alpha: float, beta: float) -> float:
    """The x with beta_cdf(x) = p, by bisection (60 halvings: exact to ~1e-18)."""
    low, high = 0.0, 1.0
    for _ in range(60):
        middle = (low + high) / 2.0
        if beta_cdf(middle, alpha, beta) < p:
            low = middle
        else:
            high = middle
    return (low + high) / 2.0


def credible_interval(posterior: Beta, level: float = 0.9) -> tuple[float, float]:
    """Equal-tailed interval holding ``level`` of the posterior's mass."""
    tail = (1.0 - level) / 2.0
    return (
        beta_quantile(tail, posterior.alpha, posterior.beta),
        beta_quantile(1.0 - tail, posterior.alpha, posterior.beta),
    )


def _fraction(x: float, a: float, b: float) -> float:
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    result = d
    for m in range(1, 300):
        for numerator in (_even_term(m, x, a, b), _odd_term(m, x, a, b)):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            result *= d * c
        if abs(d * c - 1.0) < _EPS:
            break
    return result


def _even_term(m: int, x: float, a: float, b: float) -> float:
    return m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))


def _odd_term(m: int, x: float, a: float, b: float) -> float:
    return -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
