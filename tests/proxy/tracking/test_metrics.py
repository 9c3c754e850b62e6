"""GET /metrics: Prometheus exposition read back with the official prometheus_client parser,
from a real proxy on each tracking backend (embedded and a real redis-server)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.servers import FakeUpstream
from support.tracking_support import Starter, assert_error, backend, chat, config_dict, start_proxy

from proxy.tracking.metrics import render

__all__ = ["backend", "start_proxy"]


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample by (name, labels), parsed by prometheus_client (raises on bad syntax)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def labels(**items: str) -> frozenset[tuple[str, str]]:
    return frozenset(items.items())


def test_render_is_valid_exposition_with_cumulative_histograms() -> None:
    counts = {"a": {
        "m1|calls": 5, "m1|successes": 4, "m1|failures": 1, "m1|fail.timeout": 1,
        "m1|lat.0": 1, "m1|lat.3": 2, "m1|lat.11": 1, "m1|lat_sum": 75.5, "m1|tokens_in": 40,
        "m1|cost": 0.0125, "m1|decisions": 5,
    }}
    text = render(counts, {"a": {"m1": 0.75}}, {"requests_total": 9, "store_pending": 2})
    found = samples(text)
    m1 = labels(agent="a", model="m1")
    assert found[("model_manager_calls_total", m1)] == 5
    assert found[("model_manager_failures_total", labels(agent="a", model="m1", kind="timeout"))] == 1
    assert found[("model_manager_cost_usd_total", m1)] == 0.0125
    assert found[("model_manager_tokens_total", labels(agent="a", model="m1", direction="in"))] == 40
    bucket = "model_manager_latency_seconds_bucket"
    assert found[(bucket, labels(agent="a", model="m1", le="0.025"))] == 1
    assert found[(bucket, labels(agent="a", model="m1", le="0.25"))] == 3  # cumulative
    assert found[(bucket, labels(agent="a", model="m1", le="60.0"))] == 3
    assert found[(bucket, labels(agent="a", model="m1", le="+Inf"))] == 4  # the overflow bucket
    assert found[("model_manager_latency_seconds_count", m1)] == 4
    assert found[("model_manager_latency_seconds_sum", m1)] == 75.5
    assert found[("model_manager_posterior_mean", m1)] == 0.75
    assert found[("model_manager_process_requests_total", labels())] == 9
    assert found[("model_manager_process_store_pending", labels())] == 2
    assert text.count("# TYPE model_manager_calls_total counter") == 1


def test_label_values_are_escaped() -> None:
    text = render({'we"ird\\\nagent': {"m|calls": 1}}, {}, {})
    assert samples(text)[("model_manager_calls_total", labels(agent='we"ird\\\nagent', model="m"))] == 1


@pytest.mark.parametrize("backend", ["memory", "redis", "sqlite"])
def test_a_proxy_exposes_its_counters(start_proxy: Starter, fake_upstream: FakeUpstream) -> None:
    fake_upstream.script("m1", [{"fail_status": 503}])
    proxy = start_proxy(config_dict(fake_upstream, ("m1", "m2"), router={"policy": "fixed"}))
    with proxy.client("metrics-agent") as client:
        served = [chat(client)[1] for _ in range(3)]
    proxy.wait_recorded(3)
    assert served == ["m2", "m1", "m1"]  # the first m1 call failed and fell back to m2
    response = httpx.get(proxy.url + "/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = samples(response.text)
    m1, m2 = (labels(agent="metrics-agent", model=m) for m in ("m1", "m2"))
    assert found[("model_manager_calls_total", m1)] == 3
    assert found[("model_manager_successes_total", m1)] == 2
    failed = labels(agent="metrics-agent", model="m1", kind="server_error")
    assert found[("model_manager_failures_total", failed)] == 1
    assert found[("model_manager_fallbacks_total", m2)] == 1
    assert found[("model_manager_decisions_total", m1)] == 3
    assert found[("model_manager_latency_seconds_count", m1)] == 2
    plus_inf = labels(agent="metrics-agent", model="m1", le="+Inf")
    assert found[("model_manager_latency_seconds_bucket", plus_inf)] == 2
    assert 0.0 < found[("model_manager_posterior_mean", m2)] < 1.0
    assert found[("model_manager_process_requests_total", labels())] == 3
    assert found[("model_manager_process_learner_recorded_total", labels())] == 3


@pytest.mark.parametrize("backend", ["memory"])
def test_metrics_need_the_master_key(start_proxy: Starter, fake_upstream: FakeUpstream) -> None:
    config: dict[str, Any] = {**config_dict(fake_upstream), "server": {"master_key": "sk-master"}}
    proxy = start_proxy(config)
    assert_error(httpx.get(proxy.url + "/metrics", timeout=10), 401, "invalid_api_key")
    keyed = httpx.get(proxy.url + "/metrics", headers={"Authorization": "Bearer sk-master"}, timeout=10)
    assert keyed.status_code == 200 and "# TYPE model_manager_posterior_mean gauge" in keyed.text
