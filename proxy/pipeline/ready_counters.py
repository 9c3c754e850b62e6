"""The write-path counters /ready reports: is learning and bookkeeping keeping up?

Each part reports only the counters its object has (the embedded store has no buffer),
read as plain integers; nothing here touches Redis.
"""

from __future__ import annotations

from typing import Any

STORE_COUNTERS = (
    "pending", "dropped_updates", "replayed_batches", "unavailable_reads", "failed_reads",
    "corrupt_reads", "rejected_deltas",
)
TRACKING_COUNTERS = ("pending", "dropped_updates")
LEARNER_COUNTERS = ("submitted", "recorded", "failed_writes", "hook_failures")


def write_counters(store: object, tracking: object | None, learner: object) -> dict[str, Any]:
    """``{"store": {...}, "tracking": {...}, "learner": {...}}`` of the counters each has."""
    return {
        "store": counters_of(store, STORE_COUNTERS),
        "tracking": counters_of(tracking, TRACKING_COUNTERS) if tracking is not None else {},
        "learner": counters_of(learner, LEARNER_COUNTERS),
    }


def counters_of(source: object, names: tuple[str, ...]) -> dict[str, int]:
    """The integer attributes of ``source`` among ``names`` (missing ones left out)."""
    found = {}
    for name in names:
        value = getattr(source, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            found[name] = value
    return found
