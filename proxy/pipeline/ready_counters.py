"""The write-path counters /ready reports: is learning and bookkeeping keeping up?

Plain integers already counted in memory; nothing here touches Redis.
"""

from __future__ import annotations

from collections.abc import Mapping

from proxy.pipeline.learning import Learner


def write_counters(
    storage: Mapping[str, Mapping[str, int]], learner: Learner
) -> dict[str, dict[str, int]]:
    """``storage``'s parts (``{"store": {...}, "tracking": {...}}``) and ``{"learner": {...}}``."""
    found = {part: dict(values) for part, values in storage.items()}
    found["learner"] = {
        "submitted": learner.submitted,
        "recorded": learner.recorded,
        "failed_writes": learner.failed_writes,
        "hook_failures": learner.hook_failures,
    }
    return found
