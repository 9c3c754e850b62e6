"""Redis specifics of tracking: one write per outcome survives SCRIPT FLUSH without double
counting; streamed answers fill the TTFT histogram; keys carry the per-agent hash tag."""

from __future__ import annotations

import pytest
import redis
from support.servers import FakeUpstream
from support.tracking_support import MESSAGES, Starter, backend, chat, config_dict, start_proxy

__all__ = ["backend", "start_proxy"]


@pytest.mark.parametrize("backend", ["redis"])
def test_script_flush_neither_loses_nor_doubles_counts(
    start_proxy: Starter, fake_upstream: FakeUpstream, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("redis_server").url
    proxy = start_proxy(config_dict(fake_upstream))
    with proxy.client("agent-x", "wf-x") as client, redis.Redis.from_url(url) as direct:
        for count in range(1, 4):
            chat(client)
            proxy.wait_recorded(count)
            direct.script_flush()
        keys = sorted(k.decode() for k in direct.keys("mm:*"))
    row = proxy.get("/v1/stats?agent=agent-x").json()["agents"][0]["models"][0]
    assert (row["calls"], row["successes"], row["decisions"]) == (3, 3, 3)
    assert proxy.get("/v1/workflows/wf-x").json()["requests"] == 3
    assert "mm:{agent-x}:stats" in keys and "mm:{agent-x}:wfs" in keys
    assert "mm:wf:{wf-x}" in keys and "mm:wf:{wf-x}:reqs" in keys
    assert sum(k.startswith("mm:req:mm-") for k in keys) == 3


def test_streamed_answers_record_ttft(start_proxy: Starter, fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_profile("m1", ttft_ms=30, chunk_interval_ms=5, chunks=3)
    proxy = start_proxy(config_dict(fake_upstream))
    with proxy.client("streamer", "wf-s") as client:
        for _ in range(2):
            stream = client.chat.completions.create(
                model="auto", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
            assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    proxy.wait_recorded(2)
    row = proxy.get("/v1/stats?agent=streamer").json()["agents"][0]["models"][0]
    assert (row["calls"], row["successes"]) == (2, 2)
    assert row["ttft_s"]["mean"] >= 0.03
    assert 0.03 * 0.98 <= row["ttft_s"]["p50"] <= row["ttft_s"]["mean"] * 1.02  # the lower of two, within 2%
    assert row["latency_s"]["mean"] >= row["ttft_s"]["mean"]
    assert row["tokens_out"] > 0
    assert proxy.get("/v1/workflows/wf-s").json()["totals"]["tokens_out"] == row["tokens_out"]
