"""Process-local request metrics for ``/metrics``: decisions by kind, the proxy's overhead.

The overhead of a request is its latency minus the time spent in upstream calls (every
attempt's latency): deciding, reading the store, building headers and relaying, the same
quantity as the ``x-model-manager-overhead-ms`` header, taken at the request's finish.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from proxy.pipeline.outcome import Outcome

OVERHEAD_BUCKETS_S: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
"""Upper edges of the overhead histogram buckets; one more bucket holds the rest."""


@dataclass(slots=True)
class RequestMetrics:
    """Counts of this process's finished requests (cheap: a dict increment and a bisect)."""

    decisions: dict[tuple[str, str], int] = field(default_factory=dict)
    """(agent, decision kind) -> requests."""
    overhead_buckets: list[int] = field(default_factory=lambda: [0] * (len(OVERHEAD_BUCKETS_S) + 1))
    """Non-cumulative: bucket i counts overheads <= OVERHEAD_BUCKETS_S[i] (the last: the rest)."""
    overhead_sum_s: float = 0.0

    def observe(self, outcome: Outcome) -> None:
        key = (outcome.agent, outcome.kind.value)
        self.decisions[key] = self.decisions.get(key, 0) + 1
        overhead = max(outcome.latency_s - outcome.upstream_s, 0.0)
        self.overhead_buckets[bisect.bisect_left(OVERHEAD_BUCKETS_S, overhead)] += 1
        self.overhead_sum_s += overhead
