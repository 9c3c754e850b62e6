"""LiteLLM's per-deployment ``rpm`` / ``tpm``: parsed, counted over a sliding minute, and a
model at its limit is skipped (the next-ranked model answers) on a real proxy."""

from __future__ import annotations

import random
import time
from contextlib import ExitStack
from typing import Any

import openai
import pytest
import redis.asyncio
from support.clocks import FakeClock as Clock
from support.proxy_harness import MESSAGES, ProxyFactory, basic_config, proxy_factory
from support.redis_server import free_port
from support.redis_targets import RedisTarget
from support.servers import FakeUpstream, UvicornThread

from policies.base import Decision, DecisionRequest
from proxy.app import create_app
from proxy.config.settings import ConfigError, parse_config
from proxy.forwarding.base import Summary, Usage
from proxy.pipeline.outcome import Attempt, Outcome, Status
from proxy.pipeline.usage_limits import UsageLimits
from proxy.runtime.state import redis_state
from storage.redis.client import connect
from storage.redis.usage_sync import SharedUsage

__all__ = ["proxy_factory"]




def limited(fake_upstream: FakeUpstream, **limits: dict[str, int]) -> dict[str, Any]:
    """m1 and m2 on the fake upstream, fixed policy (m1 first), ``limits`` per model."""
    config = basic_config(fake_upstream, ("m1", "m2"))
    for entry in config["model_list"]:
        entry["litellm_params"].update(limits.get(entry["model_name"], {}))
    return config


def test_limits_are_parsed_and_not_forwarded(fake_upstream: FakeUpstream) -> None:
    config = parse_config(limited(fake_upstream, m1={"rpm": 60, "tpm": 9000}))
    m1, m2 = config.arms["m1"], config.arms["m2"]
    assert (m1.rpm, m1.tpm, m2.rpm, m2.tpm) == (60, 9000, None, None)
    assert "rpm" not in m1.params and "tpm" not in m1.params


@pytest.mark.parametrize("value", [0, -5, "fast", 1.5])
def test_bad_limits_name_the_key(fake_upstream: FakeUpstream, value: object) -> None:
    with pytest.raises(ConfigError, match=r"model_list\[0\]\.litellm_params\.rpm: must be"):
        parse_config(limited(fake_upstream, m1={"rpm": value}))  # type: ignore[dict-item]


def outcome_answered_by(model: str, completion_tokens: int) -> Outcome:
    request = DecisionRequest("a", "", (model,))
    return Outcome(
        "r",
        request,
        Decision((model,)),
        {},
        workflow=None,
        started_at=0.0,
        attempts=(Attempt(model, None, 0.1),),
        status=Status.SUCCESS,
        summary=Summary(usage=Usage(prompt_tokens=0, completion_tokens=completion_tokens)),
    )


def test_requests_and_tokens_over_a_sliding_minute(fake_upstream: FakeUpstream) -> None:
    arms = parse_config(limited(fake_upstream, m1={"rpm": 2}, m2={"tpm": 100})).arms
    clock = Clock()
    limits = UsageLimits(clock)
    limits.sent(arms["m1"], 10)
    clock.now += 30
    limits.sent(arms["m1"], 10)
    assert limits.full(arms["m1"])
    clock.now += 30.5  # the first request left the window
    assert not limits.full(arms["m1"])
    limits.sent(arms["m2"], 60)
    assert not limits.full(arms["m2"])
    limits.answered(outcome_answered_by("m2", 40))  # completion tokens count too
    assert limits.full(arms["m2"])
    clock.now += 61
    assert not limits.full(arms["m2"])


def test_a_model_at_its_rpm_is_skipped_and_the_next_one_answers(
    proxy_factory: ProxyFactory, fake_upstream: FakeUpstream
) -> None:
    proxy = proxy_factory(limited(fake_upstream, m1={"rpm": 2}))
    with proxy.client() as client:
        served = [
            client.chat.completions.with_raw_response.create(model="auto", messages=MESSAGES)
            .headers["x-model-manager-model"]
            for _ in range(4)
        ]
    assert served == ["m1", "m1", "m2", "m2"]
    assert [body["model"] for body in fake_upstream.bodies()] == served  # m1 was not even called


def test_when_every_model_is_at_its_limit_the_answer_is_503(
    proxy_factory: ProxyFactory, fake_upstream: FakeUpstream
) -> None:
    proxy = proxy_factory(limited(fake_upstream, m1={"rpm": 1}, m2={"rpm": 1}))
    with proxy.client() as client:
        for _ in range(2):
            client.chat.completions.create(model="auto", messages=MESSAGES)
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model="auto", messages=MESSAGES)
    assert caught.value.status_code == 503
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == "no_model_available" and "rpm/tpm" in body["message"]


# -- shared through Redis ---------------------------------------------------------------------

async def test_shared_usage_adds_every_process_counts(redis_target: RedisTarget) -> None:
    clock = Clock()
    clock.now = 60 * 1000 + 15.0  # 15 s into a minute
    clients = [
        connect(redis_target.url, cluster=redis_target.cluster, socket_timeout=2.0, connect_timeout=2.0)
        for _ in range(2)
    ]
    one, two = (SharedUsage(c, ["m1"], interval_s=1.0, clock=clock) for c in clients)
    one.add("m1", "requests", 3)
    two.add("m1", "requests", 2)
    assert one.estimate("m1", "requests") is None  # no sync yet: the caller counts alone
    await one.sync()
    await two.sync()
    await one.sync()
    assert one.estimate("m1", "requests") == 5 and two.estimate("m1", "requests") == 5
    one.add("m1", "requests", 1)
    assert one.estimate("m1", "requests") == 6  # its own sends since the sync count at once
    clock.now += 60.0  # the next minute, 15 s in: the previous minute weighs 45/60
    await one.sync()  # the 1 is flushed into this minute
    assert one.estimate("m1", "requests") == pytest.approx(1 + 5 * 0.75)
    clock.now += 10.0  # 10 s without a sync: stale, not used
    assert one.estimate("m1", "requests") is None
    for client in clients:
        await client.aclose()


async def test_a_failed_sync_keeps_the_counts_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    client = redis.asyncio.Redis(port=free_port(), socket_connect_timeout=0.2)
    shared = SharedUsage(client, ["m1"])
    shared.add("m1", "requests", 2)
    await shared.sync()
    assert shared.failed_syncs == 1 and shared.estimate("m1", "requests") is None
    assert "usage sync failed" in caplog.text
    await client.aclose()


def test_replicas_on_one_redis_share_the_rpm(fake_upstream: FakeUpstream, redis_target: RedisTarget) -> None:
    """m1 allows 4 requests a minute over all replicas: 2 through each of two proxies use
    them up, and the next request on either goes to m2. The replicas share a wall clock that
    starts 5 s into a minute, so no minute boundary (the sliding estimate then lets the
    previous minute's requests fade) falls inside the test."""
    config = limited(fake_upstream, m1={"rpm": 4})
    config["redis"] = {"usage_sync_s": 0.05}
    parsed = parse_config(config)
    offset = (time.time() // 60 + 1) * 60 + 5.0 - time.time()

    def clock() -> float:
        return time.time() + offset

    with ExitStack() as stack:
        urls = []
        for seed in range(2):
            store = redis_target.store(socket_timeout=2.0)
            app = create_app(parsed, state=redis_state(parsed, clock, store), rng=random.Random(seed))
            urls.append(stack.enter_context(UvicornThread(app)).url)
        clients = [
            stack.enter_context(openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0))
            for url in urls
        ]

        def served(client: openai.OpenAI) -> str:
            raw = client.chat.completions.with_raw_response.create(model="auto", messages=MESSAGES)
            return raw.headers["x-model-manager-model"]

        assert [served(c) for c in clients for _ in range(2)] == ["m1"] * 4
        time.sleep(0.5)  # several syncs
        assert [served(c) for c in clients] == ["m2", "m2"]  # alone, each would still allow 2
