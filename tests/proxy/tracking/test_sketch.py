"""Latency percentiles from the log-spaced sketch: within 2% of the true rank's value,
mergeable by adding counters, and what /v1/stats reports after real traffic."""

from __future__ import annotations

import random

import pytest
from support.servers import FakeUpstream
from support.tracking_support import Starter, backend, chat, config_dict, start_proxy

from proxy.tracking import sketch

__all__ = ["backend", "start_proxy"]


def counters(values: list[float]) -> dict[str, float]:
    found: dict[str, float] = {}
    for value in values:
        name = f"lq.{sketch.key(value)}"
        found[name] = found.get(name, 0.0) + 1.0
    return found


def exact(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[int(p * (len(ordered) - 1))]


@pytest.mark.parametrize("p", [0.5, 0.9, 0.95, 0.99])
def test_quantiles_are_within_the_relative_accuracy(p: float) -> None:
    rng = random.Random(3)
    values = [rng.lognormvariate(-0.5, 1.0) for _ in range(5000)]
    estimate = sketch.quantile(counters(values), "lq", p)
    assert estimate is not None
    assert abs(estimate - exact(values, p)) <= sketch.RELATIVE_ACCURACY * exact(values, p) * 1.0001


def test_a_constant_latency_reads_back_as_itself_not_a_bucket_edge() -> None:
    """A model answering in 0.603 s every time: p50 and p95 near 0.603 (a fixed histogram said 1.0)."""
    metrics = counters([0.603] * 40)
    for p in (0.5, 0.95):
        estimate = sketch.quantile(metrics, "lq", p)
        assert estimate is not None and abs(estimate - 0.603) <= 0.02 * 0.603


def test_replicas_merge_by_adding_counters() -> None:
    rng = random.Random(5)
    first = [rng.uniform(0.05, 2.0) for _ in range(700)]
    second = [rng.uniform(0.5, 9.0) for _ in range(300)]
    merged = counters(first)
    for name, count in counters(second).items():
        merged[name] = merged.get(name, 0.0) + count
    assert merged == counters(first + second)
    assert sketch.quantile(merged, "lq", 0.9) == sketch.quantile(counters(first + second), "lq", 0.9)


def test_no_data_is_none() -> None:
    assert sketch.quantile({"lat.3": 4.0}, "lq", 0.5) is None


def test_stats_report_the_latency_that_was_served(start_proxy: Starter, fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_profile("m1", latency_ms=300.0)
    proxy = start_proxy(config_dict(fake_upstream, ("m1",)))
    with proxy.client("sketchy") as client:
        for _ in range(6):
            chat(client)
    proxy.wait_recorded(6)
    row = proxy.get("/v1/stats", params={"agent": "sketchy"}).json()["agents"][0]["models"][0]
    latency = row["latency_s"]
    assert 0.29 <= latency["p50"] <= latency["p95"] < 0.45  # the old histogram answered 0.5 for both
    assert abs(latency["p50"] - latency["mean"]) <= 0.05 * latency["mean"]
