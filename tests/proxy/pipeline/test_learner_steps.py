"""The learner's steps: score once, write the deltas, then the hooks, each failing alone."""

from __future__ import annotations

import random
from typing import Any

import pytest

from policies.base import Decision, DecisionRequest, Snapshot
from proxy.config.settings import parse_config
from proxy.forwarding.base import Summary, Usage
from proxy.pipeline import learning
from proxy.pipeline.learning import Learner, Scored
from proxy.pipeline.outcome import Attempt, Outcome, Status
from proxy.pipeline.ready_counters import write_counters
from proxy.pipeline.router import Router
from proxy.runtime.state import embedded_state
from proxy.tracking.tracker import Tracker
from storage.embedded.store import MemoryStore

CONFIG = parse_config(
    {
        "model_list": [{"model_name": m, "litellm_params": {"model": f"openai/{m}"}} for m in ("m1", "m2")],
        "router": {"policy": "thompson", "propensity_samples": 16},
    }
)
REQUEST = DecisionRequest("a", "", ("m1", "m2"))


def answered(request_id: str) -> Outcome:
    return Outcome(
        request_id,
        REQUEST,
        Decision(("m1", "m2")),
        {},
        workflow="wf",
        started_at=1.0,
        attempts=(Attempt("m1", None, 0.2),),
        status=Status.SUCCESS,
        summary=Summary(text="Paris is the capital of France.", finish_reason="stop", usage=Usage(5, 7)),
        latency_s=0.2,
    )


async def priced(model: str, usage: Usage) -> float:
    return 0.001 * usage.completion_tokens


class BrokenStore(MemoryStore):
    async def apply(self, deltas: Any) -> None:
        raise RuntimeError("store down")


def evidence(snapshot: Snapshot) -> float:
    """Total evidence (alpha + beta added) over every cell of ``snapshot``."""
    return sum(cell.total for cells in snapshot.values() for cell in cells.values())


async def test_a_failing_hook_leaves_the_written_deltas_counted_as_written() -> None:
    store = MemoryStore()
    learner = Learner(Router(CONFIG), store, random.Random(0), cost=priced)
    seen: list[Scored] = []

    async def broken(scored: Scored) -> None:
        raise RuntimeError("hook bug")

    async def keep(scored: Scored) -> None:
        seen.append(scored)

    learner.hooks += [broken, keep]
    await learner.record_batch([answered("r1"), answered("r2")])
    assert (learner.recorded, learner.failed_writes, learner.hook_failures) == (2, 0, 2)
    assert [s.outcome.request_id for s in seen] == ["r1", "r2"]  # the next hook still ran
    policy = Router(CONFIG).policy_for("a")
    tables = policy.tables(REQUEST)
    assert evidence(await store.load(tables, ["m1"])) == pytest.approx(2.0 * len(tables))  # both written
    counters = write_counters({"store": store.counters()}, learner)["learner"]
    assert (counters["failed_writes"], counters["hook_failures"]) == (0, 2)


async def test_a_failing_store_write_counts_failed_writes_and_the_hooks_still_run() -> None:
    learner = Learner(Router(CONFIG), BrokenStore(), random.Random(0))
    seen: list[list[Scored]] = []

    async def keep(batch: list[Scored]) -> None:
        seen.append(batch)

    learner.batch_hooks.append(keep)
    await learner.record_batch([answered("r1"), answered("r2")])
    assert (learner.recorded, learner.failed_writes, learner.hook_failures) == (2, 2, 0)
    assert [len(batch) for batch in seen] == [2]


async def test_scored_carries_cost_propensity_and_quality_and_tracking_reuses_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assessed: list[object] = []
    assess = learning.assess_quality

    def counted(*args: Any) -> float:
        assessed.append(args)
        return assess(*args)

    monkeypatch.setattr(learning, "assess_quality", counted)
    store = MemoryStore()
    router = Router(CONFIG)
    learner = Learner(router, store, random.Random(0), cost=priced)
    state = embedded_state(CONFIG, lambda: 1.0, store)
    tracker = Tracker(state.tracking, config=CONFIG, router=router, store=store, clock=lambda: 1.0)
    scored: list[Scored] = []

    async def keep(item: Scored) -> None:
        scored.append(item)

    learner.batch_hooks.append(tracker.hook_many)
    learner.hooks.append(keep)
    outcome = answered("r1")
    await learner.record(outcome)
    (item,) = scored
    assert item.outcome is outcome and len(assessed) == 1  # quality assessed once, by the learner
    assert item.cost_usd == pytest.approx(0.007) and item.quality is not None
    assert item.propensity is not None and 0.0 < item.propensity <= 1.0
    assert set(item.rewards) == {"m1"} and 0.0 < item.rewards["m1"] <= 1.0
    stats = await tracker.backend.stats(["a"])
    assert stats["a"]["m1|quality_sum"] == pytest.approx(item.quality)
    assert stats["a"]["m1|cost"] == pytest.approx(0.007)


async def test_a_cancelled_outcome_scores_nothing() -> None:
    learner = Learner(Router(CONFIG), MemoryStore(), random.Random(0), cost=priced)
    cancelled = Outcome(
        "r", REQUEST, Decision(("m1", "m2")), {}, workflow=None, started_at=1.0, status=Status.CANCELLED
    )
    assert await learner.score(cancelled) == Scored(cancelled, {})
