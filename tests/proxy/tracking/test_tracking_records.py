"""What one outcome adds (pure), percentiles, and the memory backend's expiry and CAS."""

from __future__ import annotations

import asyncio

import pytest

from policies.base import Decision, DecisionRequest
from proxy.forwarding.base import FailureKind, Summary, Usage
from proxy.pipeline.learning import Scored
from proxy.pipeline.outcome import Attempt, Outcome, Status
from proxy.tracking import sketch
from proxy.tracking.memory import MemoryTracking
from proxy.tracking.records import BUCKETS_S, bucket, track
from proxy.tracking.summaries import percentile

REQUEST = DecisionRequest("ag", "ctx", ("m1", "m2"))


def outcome(attempts: list[Attempt], status: Status, workflow: str | None = "wf", **kw: object) -> Outcome:
    return Outcome(
        request_id="mm-1",
        decision_request=REQUEST,
        decision=Decision(("m1", "m2")),
        snapshot={},
        workflow=workflow,
        started_at=100.0,
        attempts=tuple(attempts),
        status=status,
        **kw,  # type: ignore[arg-type]
    )


def test_fallback_success_counts() -> None:
    done = outcome(
        [Attempt("m1", FailureKind.TIMEOUT, 2.0), Attempt("m2", None, 0.3, 0.1)],
        Status.SUCCESS,
        summary=Summary(text="hi", usage=Usage(7, 3)),
    )
    tracked = track(Scored(done, {"m1": 0.0, "m2": 0.9}, cost_usd=0.5, quality=0.8), 100.0)
    assert tracked.stats == {
        "m1|decisions": 1,
        "m1|calls": 1,
        "m1|failures": 1,
        "m1|fail.timeout": 1,
        "m2|calls": 1,
        "m2|fallbacks": 1,
        "m2|successes": 1,
        f"m2|lat.{bucket(0.3)}": 1,
        f"m2|lq.{sketch.key(0.3)}": 1,
        "m2|lat_sum": 0.3,
        f"m2|ttft.{bucket(0.1)}": 1,
        f"m2|tq.{sketch.key(0.1)}": 1,
        "m2|ttft_sum": 0.1,
        "m2|ttft_n": 1,
        "m2|tokens_in": 7,
        "m2|tokens_out": 3,
        "m2|cost": 0.5,
        "m2|quality_sum": 0.8,
        "m2|quality_n": 1,
    }
    assert tracked.workflow_counts["ag|m2|tokens_in"] == 7
    assert tracked.workflow_counts["ag|m1|first_attempts"] == 1
    assert tracked.workflow_counts["ag|m2|fallbacks"] == 1
    assert tracked.decision is not None
    assert (tracked.decision.model, tracked.decision.applied, tracked.decision.ttft_s) == ("m2", 0.9, 0.1)


def test_cancelled_client_error_and_broken_stream() -> None:
    cancelled = track(Scored(outcome([], Status.CANCELLED, workflow=None), {}), 1.0)
    assert cancelled.stats == {"m1|decisions": 1, "m1|cancelled": 1}
    assert cancelled.workflow_counts == {} and cancelled.decision is None
    refused = track(Scored(outcome([Attempt("m1", FailureKind.CLIENT, 0.1)], Status.CLIENT_ERROR), {}), 1.0)
    assert refused.stats["m1|fail.client_error"] == 1 and refused.decision is None
    assert refused.workflow_counts["status.client_error"] == 1
    cut = outcome(
        [Attempt("m1", FailureKind.STREAM_CUT, 1.0, 0.2)],
        Status.STREAM_ERROR,
        summary=Summary(usage=Usage(5, 1)),
    )
    broken = track(Scored(cut, {"m1": 0.0}), 1.0)
    assert broken.stats["m1|fail.stream_cut"] == 1 and "m1|tokens_in" not in broken.stats
    assert broken.decision is None


@pytest.mark.parametrize(
    ("value", "index"),
    [(0.0, 0), (0.025, 0), (0.0251, 1), (60.0, len(BUCKETS_S) - 1), (61.0, len(BUCKETS_S))],
)
def test_buckets(value: float, index: int) -> None:
    assert bucket(value) == index


def test_percentiles_are_bucket_upper_edges() -> None:
    metrics = {"lat.0": 50.0, "lat.3": 45.0, f"lat.{len(BUCKETS_S)}": 5.0}
    assert percentile(metrics, "lat", 0.5) == BUCKETS_S[0]
    assert percentile(metrics, "lat", 0.95) == BUCKETS_S[3]
    assert percentile(metrics, "lat", 0.99) is None  # the unbounded bucket
    assert percentile({}, "lat", 0.5) is None


def test_memory_backend_expiry_purge_and_compare_and_set() -> None:
    now = [0.0]
    backend = MemoryTracking(clock=lambda: now[0], retention_s=10.0, decision_ttl_s=5.0)
    done = outcome([Attempt("m1", None, 0.1)], Status.SUCCESS, summary=Summary(text="x"))

    async def scenario() -> None:
        await backend.write(track(Scored(done, {"m1": 0.7}, quality=1.0), 0.0))
        assert await backend.swap_applied("mm-1", 0.5, 0.2, 0.1) is False
        assert await backend.swap_applied("mm-1", 0.7, 0.2, 0.1) is True
        record = await backend.decision("mm-1")
        assert record is not None and (record.applied, record.score) == (0.2, 0.1)
        now[0] = 6.0
        assert await backend.decision("mm-1") is None
        assert await backend.swap_applied("mm-1", 0.2, 0.3, 0.1) is None
        assert await backend.workflow("wf") is not None
        now[0] = 11.0
        await backend.write(track(Scored(outcome([], Status.CANCELLED, workflow=None), {}), 11.0))
        assert backend._state.workflows == {} and backend._state.decisions == {}  # purged on write
        assert await backend.recent_workflows("ag", 10) == []

    asyncio.run(scenario())
