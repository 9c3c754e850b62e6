"""Read-your-writes on one process: a response's decision record, workflow counts and stats
are visible to /v1/feedback, /v1/workflows/* and /v1/stats as soon as it was sent (the
endpoints await the Learner's ``settled()`` barrier), for JSON and streamed answers, on the
memory and Redis backends. Clients are the official openai SDK. A slow first batch hook stands
in for a loaded writer, so a read that does not wait for the writer would miss the answer."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from support.servers import FakeUpstream
from support.tracking_support import MESSAGES, Proxy, Starter, backend, config_dict, start_proxy

__all__ = ["backend", "start_proxy"]
ROUNDS = 20
WRITER_LAG_S = 0.1


def _slow_writer(proxy: Proxy) -> Proxy:
    """Every learner batch waits WRITER_LAG_S before tracking writes it."""

    async def lag(batch: object) -> None:
        await asyncio.sleep(WRITER_LAG_S)

    proxy.services.learner.batch_hooks.insert(0, lag)
    return proxy


def _call(proxy: Proxy, agent: str, *, stream: bool, workflow: str | None = None) -> str:
    """One SDK call read to its end; its x-request-id."""
    client = proxy.client(agent, workflow)
    if not stream:
        raw = client.chat.completions.with_raw_response.create(model="auto", messages=MESSAGES)
        raw.parse()
        return raw.headers["x-request-id"]
    with client.chat.completions.with_streaming_response.create(
        model="auto", messages=MESSAGES, stream=True
    ) as response:
        for _ in response.parse():
            pass
        return response.headers["x-request-id"]


@pytest.mark.parametrize(("stream", "agent", "score"), [(False, "rw", 0.9), (True, "rws", 0.4)])
def test_feedback_right_after_an_answer_is_found(
    start_proxy: Starter, fake_upstream: FakeUpstream, stream: bool, agent: str, score: float
) -> None:
    proxy = _slow_writer(start_proxy(config_dict(fake_upstream)))
    answers = [
        proxy.post("/v1/feedback", {"request_id": _call(proxy, agent, stream=stream), "score": score})
        for _ in range(ROUNDS)
    ]
    assert [r.status_code for r in answers] == [200] * ROUNDS, [
        r.text for r in answers if r.status_code != 200
    ]


def test_workflow_and_stats_counts_are_exact_right_after_the_answers(
    start_proxy: Starter, fake_upstream: FakeUpstream
) -> None:
    proxy = _slow_writer(start_proxy(config_dict(fake_upstream)))
    seen: list[tuple[int, int]] = []
    for n in range(1, 13):
        _call(proxy, "rw-a" if n <= 7 else "rw-b", stream=n % 2 == 0, workflow="wf-777")
        workflow = proxy.get("/v1/workflows/wf-777").json()
        stats = {row["agent"]: row["requests"] for row in proxy.get("/v1/stats").json()["agents"]}
        seen.append((workflow["requests"], stats.get("rw-a", 0) + stats.get("rw-b", 0)))
    assert seen == [(n, n) for n in range(1, 13)]


def test_feedback_for_a_stream_still_open_waits_for_its_record(
    start_proxy: Starter, fake_upstream: FakeUpstream
) -> None:
    """Feedback sent while its stream is still being relayed is answered once the stream ends."""
    proxy = start_proxy(config_dict(fake_upstream))
    fake_upstream.set_profile("m1", chunks=20, chunk_interval_ms=50)
    with httpx.stream(
        "POST",
        f"{proxy.url}/v1/chat/completions",
        json={"model": "auto", "messages": MESSAGES, "stream": True},
        headers={"X-Agent": "rw-open"},
        timeout=20,
    ) as response:
        request_id = response.headers["x-request-id"]
        feedback = proxy.post("/v1/feedback", {"request_id": request_id, "score": 1.0})
        body = response.read()
    assert feedback.status_code == 200, feedback.text
    assert b"[DONE]" in body


def test_the_barrier_costs_little_when_nothing_is_pending(
    start_proxy: Starter, fake_upstream: FakeUpstream
) -> None:
    """Printed figure: /v1/stats right after an answer vs. on an idle learner."""
    proxy = start_proxy(config_dict(fake_upstream))
    _call(proxy, "rw-cost", stream=False)
    after, idle = [], []
    for _ in range(ROUNDS):
        _call(proxy, "rw-cost", stream=False)
        began = time.perf_counter()
        proxy.get("/v1/stats?agent=rw-cost")
        after.append(time.perf_counter() - began)
        began = time.perf_counter()
        proxy.get("/v1/stats?agent=rw-cost")
        idle.append(time.perf_counter() - began)
    after.sort()
    idle.sort()
    middle = ROUNDS // 2
    print(f"/v1/stats median after an answer {after[middle] * 1e3:.2f} ms, idle {idle[middle] * 1e3:.2f} ms")
    assert proxy.services.learner.recorded == proxy.services.learner.submitted


@pytest.mark.parametrize("backend", ["redis", "sqlite"])
def test_cross_replica_lag_is_measured(start_proxy: Starter, fake_upstream: FakeUpstream) -> None:
    """Printed figure: from a response on replica A until replica B (same Redis, or the same
    embedded database file) finds its decision record for feedback; every record gets there."""
    writer, reader = start_proxy(config_dict(fake_upstream)), start_proxy(config_dict(fake_upstream))
    lags, first_tries = [], 0
    with httpx.Client(timeout=10) as http:
        for _ in range(ROUNDS):
            request_id = _call(writer, "rw-lag", stream=False)
            began, tries = time.perf_counter(), 1
            feedback = {"request_id": request_id, "score": 0.5}
            while http.post(f"{reader.url}/v1/feedback", json=feedback).status_code == 404:
                assert time.perf_counter() - began < 10.0, "the record never reached the other replica"
                tries += 1
            lags.append(time.perf_counter() - began)
            first_tries += tries == 1
    lags.sort()
    print(
        f"cross-replica feedback: found at the first try {first_tries}/{ROUNDS}, "
        f"median {lags[ROUNDS // 2] * 1e3:.1f} ms, max {lags[-1] * 1e3:.1f} ms"
    )
