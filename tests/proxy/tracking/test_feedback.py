"""Explicit feedback moves the posterior by exactly the expected amount (memory and Redis)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pytest
from support.servers import FakeUpstream
from support.tracking_support import Proxy, Starter, backend, chat, config_dict, start_proxy

from policies.base import POOLED, Delta, Evidence, Table
from policies.evidence_tables import EvidenceTables
from storage.redis.keys import post_key

__all__ = ["backend", "start_proxy"]

QUALITY_WEIGHT = 0.6  # default reward weights: quality 0.6, latency 0.2, cost 0.2
SCOPES = (POOLED, "agent-a")


def thompson(upstream: FakeUpstream, **router: Any) -> dict[str, Any]:
    """One model (m1), Thompson sampling without exploration or decay."""
    return config_dict(upstream, ("m1",), router={"policy": "thompson", "exploration_rate": 0.0, **router})


def evidence(proxy: Proxy) -> dict[str, Evidence]:
    return {scope: proxy.evidence(scope, "m1") for scope in SCOPES}


def moved(before: dict[str, Evidence], after: dict[str, Evidence], delta: float) -> None:
    """Every table gained ``delta`` successes and lost ``delta`` failures."""
    for scope in SCOPES:
        assert after[scope].successes == pytest.approx(before[scope].successes + delta, abs=1e-12)
        assert after[scope].failures == pytest.approx(before[scope].failures - delta, abs=1e-12)


def feedback(proxy: Proxy, **body: Any) -> dict[str, Any]:
    response = proxy.post("/v1/feedback", body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_request_feedback_replaces_quality_exactly_and_is_idempotent(
    start_proxy: Starter, fake_upstream: FakeUpstream
) -> None:
    proxy = start_proxy(thompson(fake_upstream))
    with proxy.client("agent-a") as client:
        request_id, model, _ = chat(client)
    proxy.wait_recorded(1)
    start = evidence(proxy)
    heuristic_reward = start["agent-a"].successes
    assert start["agent-a"].total == pytest.approx(1.0)
    first = feedback(proxy, request_id=request_id, score=0.2)
    assert (first["model"], first["changed"]) == (model, True)
    assert first["previous_reward"] == pytest.approx(heuristic_reward, abs=1e-12)
    assert first["delta"] == pytest.approx(QUALITY_WEIGHT * (0.2 - 1.0), abs=1e-12)
    moved(start, evidence(proxy), first["delta"])
    again = feedback(proxy, request_id=request_id, score=0.2)
    assert (again["changed"], again["delta"]) == (False, 0.0)
    moved(start, evidence(proxy), first["delta"])
    replaced = feedback(proxy, request_id=request_id, score=0.7)
    assert replaced["delta"] == pytest.approx(QUALITY_WEIGHT * (0.7 - 0.2), abs=1e-12)
    moved(start, evidence(proxy), QUALITY_WEIGHT * (0.7 - 1.0))


def test_workflow_feedback_reaches_every_answered_decision(
    start_proxy: Starter, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.script("m1", [{}, {"fail_status": 503}, {}])
    proxy = start_proxy(thompson(fake_upstream))
    answered = []
    with proxy.client("agent-a", "wf-1") as client:
        answered.append(chat(client)[0])
        with pytest.raises(openai.APIStatusError):
            chat(client)
        answered.append(chat(client)[0])
    proxy.wait_recorded(3)
    start = evidence(proxy)
    result = feedback(proxy, workflow_id="wf-1", score=0.5)
    assert result["credited"] == 2
    assert [d["request_id"] for d in result["decisions"]] == answered
    assert len(result["skipped"]) == 1  # the failed request: its 0 reward is not changed
    moved(start, evidence(proxy), 2 * QUALITY_WEIGHT * (0.5 - 1.0))
    assert all(not d["changed"] for d in feedback(proxy, workflow_id="wf-1", score=0.5)["decisions"])
    moved(start, evidence(proxy), 2 * QUALITY_WEIGHT * (0.5 - 1.0))


def test_finish_marks_the_workflow_and_credits_it(start_proxy: Starter, fake_upstream: FakeUpstream) -> None:
    proxy = start_proxy(thompson(fake_upstream))
    with proxy.client("agent-a", "wf-2") as client:
        chat(client)
    proxy.wait_recorded(1)
    start = evidence(proxy)
    response = proxy.post("/v1/workflows/wf-2/finish", {"outcome": "failure", "score": 0.0})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["finished"], body["outcome"], body["score"]) == (True, "failure", 0.0)
    assert body["feedback"]["credited"] == 1
    moved(start, evidence(proxy), -QUALITY_WEIGHT)
    summary = proxy.get("/v1/workflows/wf-2").json()
    assert summary["finished"] and summary["outcome"] == "failure" and summary["finished_at"] > 0
    unscored = proxy.post("/v1/workflows/wf-2/finish", {"outcome": "success"}).json()
    assert unscored["outcome"] == "success" and "feedback" not in unscored
    moved(start, evidence(proxy), -QUALITY_WEIGHT)


def zero_successes(proxy: Proxy, scope: str) -> None:
    """Wipe a cell's success mass behind the proxy's back (as decay would shrink it)."""
    if isinstance(proxy.store, EvidenceTables):
        proxy.store.apply_now([Delta(Table(scope), "m1", -10.0, 0.0)])
        return
    assert proxy.redis is not None
    with proxy.redis.client() as client:
        client.hset(post_key(proxy.store.prefix, Table(scope)), "m1:s", "0")


def test_feedback_never_drives_evidence_below_the_prior(
    start_proxy: Starter, fake_upstream: FakeUpstream
) -> None:
    proxy = start_proxy(thompson(fake_upstream, policy_options={"pool_strength": 0.0}))
    with proxy.client("agent-a") as client:
        request_id, _, _ = chat(client)
    proxy.wait_recorded(1)
    zero_successes(proxy, "agent-a")
    before = proxy.evidence("agent-a", "m1")
    result = feedback(proxy, request_id=request_id, score=0.0)
    after = proxy.evidence("agent-a", "m1")
    assert result["delta"] < 0
    assert after.successes == 0.0  # clamped: alpha stays at the prior
    assert after.failures == pytest.approx(before.failures - result["delta"], abs=1e-12)
    stats = proxy.get("/v1/stats", params={"agent": "agent-a"}).json()
    assert stats["agents"][0]["models"][0]["posterior"]["alpha"] == 1.0  # no pooled prior: alpha is the prior


def test_expired_decisions_are_refused(start_proxy: Starter, fake_upstream: FakeUpstream) -> None:
    proxy = start_proxy(thompson(fake_upstream, decision_ttl_s=0.3))
    with proxy.client("agent-a") as client:
        request_id, _, _ = chat(client)
    proxy.wait_recorded(1)
    time.sleep(0.5)
    response = proxy.post("/v1/feedback", {"request_id": request_id, "score": 1.0})
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_workflows_expire_after_the_retention(start_proxy: Starter, fake_upstream: FakeUpstream) -> None:
    proxy = start_proxy({**thompson(fake_upstream), "server": {"workflow_retention_s": 0.5}})
    with proxy.client("agent-a", "wf-short") as client:
        chat(client)
    proxy.wait_recorded(1)
    assert proxy.get("/v1/workflows/wf-short").status_code == 200
    assert [w["id"] for w in proxy.get("/v1/workflows?agent=agent-a").json()["data"]] == ["wf-short"]
    time.sleep(0.8)
    assert proxy.get("/v1/workflows/wf-short").status_code == 404
    assert proxy.get("/v1/workflows?agent=agent-a").json()["data"] == []
    assert proxy.post("/v1/workflows/wf-short/finish", {"outcome": "success"}).status_code == 404
    assert proxy.post("/v1/feedback", {"workflow_id": "wf-short", "score": 1}).status_code == 404


def test_concurrent_feedback_for_one_decision_loses_no_update(
    start_proxy: Starter, fake_upstream: FakeUpstream
) -> None:
    """16 racing scores, then one more: the posterior holds exactly the last score's reward."""
    proxy = start_proxy(thompson(fake_upstream))
    with proxy.client("agent-a") as client:
        request_id, _, _ = chat(client)
    proxy.wait_recorded(1)
    start = evidence(proxy)
    scores = [i / 16 for i in range(16)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda s: feedback(proxy, request_id=request_id, score=s), scores))
    assert all(r["request_id"] == request_id for r in results)
    feedback(proxy, request_id=request_id, score=0.25)
    moved(start, evidence(proxy), QUALITY_WEIGHT * (0.25 - 1.0))
