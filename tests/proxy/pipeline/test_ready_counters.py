"""write_counters reports only the integer counters each part has."""

from __future__ import annotations

from proxy.pipeline.ready_counters import counters_of, write_counters


class _Store:
    pending = 3
    dropped_updates = 1
    replayed_batches = True  # not a count: left out
    corrupt_reads = "7"  # not an int: left out


class _Learner:
    submitted = 10
    recorded = 9
    failed_writes = 2
    hook_failures = 1


def test_counters_are_the_integer_attributes_present() -> None:
    names = ("pending", "dropped_updates", "replayed_batches", "corrupt_reads", "gone")
    assert counters_of(_Store(), names) == {"pending": 3, "dropped_updates": 1}


def test_write_counters_without_tracking() -> None:
    assert write_counters(_Store(), None, _Learner()) == {
        "store": {"pending": 3, "dropped_updates": 1},
        "tracking": {},
        "learner": {"submitted": 10, "recorded": 9, "failed_writes": 2, "hook_failures": 1},
    }
