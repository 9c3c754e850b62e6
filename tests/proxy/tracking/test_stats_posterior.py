"""/v1/stats and /metrics report the posterior the agent's Thompson policy samples from:
evidence scaled by ``evidence_scale``, other agents' evidence as a capped prior, and the
prompt context's cell (memory and Redis)."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.servers import FakeUpstream
from support.tracking_support import Proxy, Starter, backend, chat, config_dict, start_proxy

from policies.base import POOLED, Evidence

__all__ = ["backend", "start_proxy"]

SCALE = 3.0
PRIOR = (2.0, 1.0)


def _config(upstream: FakeUpstream) -> dict[str, Any]:
    router = {
        "policy": "thompson",
        "exploration_rate": 0.0,
        "priors": {"m1": {"alpha": PRIOR[0], "beta": PRIOR[1]}},
        "policy_options": {
            "evidence_scale": SCALE, "pool_strength": 4.0, "context_strength": 2.0, "min_tries": 0,
            "context_strength_max": 2.0, "choice_discount": 0.0,  # the constants the sums below use
        },
    }
    return config_dict(upstream, ("m1",), router=router)


def _posterior(proxy: Proxy, agent: str, **params: str) -> dict[str, float]:
    body = proxy.get("/v1/stats", params={"agent": agent, **params}).json()
    row = body["agents"][0]["models"][0]
    assert row["model"] == "m1"
    posterior: dict[str, float] = row["posterior"]
    return posterior


def _beta(mass: Evidence) -> tuple[float, float]:
    return PRIOR[0] + SCALE * mass.successes, PRIOR[1] + SCALE * mass.failures


def _capped(mass: Evidence, cap: float) -> Evidence:
    k = min(1.0, cap / mass.total)
    return Evidence(k * mass.successes, k * mass.failures)


def _posterior_mean(proxy: Proxy, agent: str) -> float:
    for family in text_string_to_metric_families(proxy.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "model_manager_posterior_mean" and sample.labels["agent"] == agent:
                return float(sample.value)
    raise AssertionError(f"no posterior mean for {agent}")


def _learn(start_proxy: Starter, upstream: FakeUpstream) -> tuple[Proxy, Evidence, Evidence]:
    """A veteran agent with 3 answers, a newcomer with 1 (all "chat" prompts)."""
    proxy = start_proxy(_config(upstream))
    for agent, calls in (("veteran", 3), ("newcomer", 1)):
        with proxy.client(agent) as client:
            for _ in range(calls):
                chat(client)
    proxy.wait_recorded(4)
    veteran, newcomer = proxy.evidence("veteran", "m1"), proxy.evidence("newcomer", "m1")
    assert veteran.total == pytest.approx(3.0) and newcomer.total == pytest.approx(1.0)
    assert proxy.evidence(POOLED, "m1").total == pytest.approx(4.0)
    return proxy, veteran, newcomer


def test_stats_posterior_is_the_scaled_policy_posterior(
    start_proxy: Starter, fake_upstream: FakeUpstream
) -> None:
    proxy, veteran, newcomer = _learn(start_proxy, fake_upstream)
    post = _posterior(proxy, "veteran")  # prior + 3 x (own + the newcomer's 1, under the pool cap)
    both = Evidence(veteran.successes + newcomer.successes, veteran.failures + newcomer.failures)
    assert (post["alpha"], post["beta"]) == pytest.approx(_beta(both), abs=1e-5)
    assert post["alpha"] > PRIOR[0] + 3 * veteran.successes  # not Beta(prior) + own evidence


def test_stats_posterior_of_a_newcomer_includes_the_pooled_prior(
    start_proxy: Starter, fake_upstream: FakeUpstream
) -> None:
    proxy, veteran, newcomer = _learn(start_proxy, fake_upstream)
    both = Evidence(veteran.successes + newcomer.successes, veteran.failures + newcomer.failures)
    post = _posterior(proxy, "newcomer")  # others' 3 observations (under the pool cap of 4) count
    assert (post["alpha"], post["beta"]) == pytest.approx(_beta(both), abs=1e-5)
    mean = _posterior_mean(proxy, "newcomer")
    alpha, beta = _beta(both)
    assert mean == pytest.approx(alpha / (alpha + beta), abs=1e-9)


def test_stats_posterior_per_context(start_proxy: Starter, fake_upstream: FakeUpstream) -> None:
    proxy, veteran, newcomer = _learn(start_proxy, fake_upstream)
    assert proxy.evidence("newcomer", "m1", "chat") == newcomer  # every prompt was a chat prompt
    both = Evidence(veteran.successes + newcomer.successes, veteran.failures + newcomer.failures)
    chat_post = _posterior(proxy, "newcomer", context="chat")  # cap(others, 4) + the chat cell
    assert (chat_post["alpha"], chat_post["beta"]) == pytest.approx(_beta(both), abs=1e-5)
    code_post = _posterior(proxy, "veteran", context="code")  # no code cell: others + cap(own, 2)
    capped = _capped(veteran, 2.0)
    expected = Evidence(newcomer.successes + capped.successes, newcomer.failures + capped.failures)
    assert (code_post["alpha"], code_post["beta"]) == pytest.approx(_beta(expected), abs=1e-5)


def test_stats_rejects_a_bad_context(start_proxy: Starter, fake_upstream: FakeUpstream) -> None:
    proxy = start_proxy(_config(fake_upstream))
    reply = proxy.get("/v1/stats", params={"context": "no spaces"})
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "context"
