"""Latency quantiles from log-spaced counters (the DDSketch mapping), mergeable by addition.

A value ``v`` seconds lands in bucket ``k = ceil(log(v) / log(GAMMA))``, which holds
``(GAMMA**(k-1), GAMMA**k]``; a quantile is read back as ``2 * GAMMA**k / (GAMMA + 1)``, within
RELATIVE_ACCURACY of the true rank's value. Buckets are plain counters (stats hash fields
``<model>|<prefix>.<k>``), so replicas merge them by summing, like every other counter.
Values at or below MIN_S share the lowest bucket.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

RELATIVE_ACCURACY = 0.02
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(GAMMA)
MIN_S = 1e-4
LATENCY = "lq"
TTFT = "tq"


def key(value_s: float) -> int:
    """The bucket index of ``value_s`` seconds."""
    return math.ceil(math.log(max(value_s, MIN_S)) / _LOG_GAMMA)


def quantile(metrics: Mapping[str, float], prefix: str, p: float) -> float | None:
    """The value at rank ``p`` of the ``<prefix>.<k>`` counters (None: no data)."""
    buckets = sorted(_buckets(metrics, prefix).items())
    total = sum(count for _, count in buckets)
    if total <= 0:
        return None
    rank = p * (total - 1)
    running = 0.0
    for index, count in buckets:
        running += count
        if running > rank:
            return round(2 * GAMMA**index / (GAMMA + 1), 6)
    return round(2 * GAMMA ** buckets[-1][0] / (GAMMA + 1), 6)


def _buckets(metrics: Mapping[str, float], prefix: str) -> dict[int, float]:
    found: dict[int, float] = {}
    start = prefix + "."
    for name, count in metrics.items():
        if name.startswith(start):
            suffix = name[len(start):]
            if suffix.lstrip("-").isdigit() and count > 0:
                found[int(suffix)] = count
    return found
