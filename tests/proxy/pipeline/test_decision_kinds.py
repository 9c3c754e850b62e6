"""x-model-manager-decision, the explain header, the access line and attempt warnings,
and the process metrics, driven in-process over a ScriptedUpstream (test_flow_fast's rig)."""

from __future__ import annotations

import logging

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.scripted_upstream import Answer, Fail
from test_flow_fast import MODELS, Rig, play, rig

from policies.base import Delta, Table
from proxy.forwarding.base import FailureKind
from proxy.pipeline.access_log import AccessLog
from proxy.pipeline.explain import EXPLAIN_HEADER
from proxy.pipeline.flow import handle_chat
from proxy.pipeline.kinds import DECISION_HEADER
from proxy.pipeline.request import parse_chat_request
from proxy.tracking.metrics import render


async def ask(r: Rig, *, model: str = "auto", pin: bool = False, explain: bool = True) -> dict[str, str]:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"x-agent": "a", "x-model-manager-explain": "true" if explain else "false"}
    if pin:
        headers["x-model-manager-pin"] = "true"
    played = await play(await handle_chat(r.services, parse_chat_request(orjson.dumps(body), headers)))
    return played.headers


def explanation(headers: dict[str, str]) -> dict[str, object]:
    loaded: dict[str, object] = orjson.loads(headers[EXPLAIN_HEADER])
    return loaded


async def teach_every_model(r: Rig, tries: float) -> None:
    """Evidence in every table the agent's policy reads, enough to end forced tries."""
    policy = r.services.router.policy_for("a")
    tables = {Table("*"), Table("a"), *(Table("a", c) for c in ("chat", "", "code", "chat+short", "short"))}
    await r.services.store.apply([Delta(t, m, tries, tries) for t in tables for m in MODELS])
    assert policy.name == "thompson"


async def test_a_fresh_agent_gets_forced_tries_without_sampled_values() -> None:
    r = rig({m: [Answer()] for m in MODELS}, policy="thompson")
    headers = await ask(r)
    assert headers[DECISION_HEADER] == "forced-try"
    body = explanation(headers)
    assert body["kind"] == "forced-try" and body["model"] == headers["x-model-manager-model"]
    candidates = body["candidates"]
    assert isinstance(candidates, list) and {c["model"] for c in candidates} == set(MODELS)
    assert all(c["sampled"] is None and c["mean"] == 0.5 for c in candidates)
    assert body["propensity"] == pytest.approx(1 / 3, abs=1e-3)


async def test_with_evidence_the_choice_is_sampled_and_its_draw_is_the_largest() -> None:
    r = rig({m: [Answer()] for m in MODELS}, policy="thompson")
    await teach_every_model(r, 50.0)
    headers = await ask(r)
    assert headers[DECISION_HEADER] == "sampled"
    candidates = explanation(headers)["candidates"]
    assert isinstance(candidates, list)
    draws = [c["sampled"] for c in candidates]
    assert all(isinstance(d, float) for d in draws) and draws[0] == max(draws)


async def test_an_exploration_draw_is_explored() -> None:
    r = rig({m: [Answer()] for m in MODELS}, policy="thompson", exploration_rate=1.0)
    assert (await ask(r, explain=False))[DECISION_HEADER] == "explored"


async def test_an_answer_from_a_later_model_is_a_fallback_and_the_skips_are_named() -> None:
    r = rig({"m1": [Fail(FailureKind.RATE_LIMITED, 429, retry_after_s=30)], "m2": [Answer(), Answer()]})
    first = await ask(r)
    assert first[DECISION_HEADER] == "fallback"
    assert explanation(first)["skipped"] == []
    second = await ask(r)
    assert second[DECISION_HEADER] == "fallback"  # m1 rests: passed over without an attempt
    assert explanation(second)["skipped"] == [{"model": "m1", "reason": "cooldown"}]


async def test_a_model_at_its_rpm_is_skipped_as_usage_limit() -> None:
    limits = {"m1": {"rpm": 1}}
    r = rig({"m1": [Answer()], "m2": [Answer()], "m3": [Answer()]}, limits=limits)
    assert (await ask(r))[DECISION_HEADER] == "sampled"  # fixed policy: its own pick
    second = await ask(r)
    assert explanation(second)["skipped"] == [{"model": "m1", "reason": "usage_limit"}]


async def test_a_pinned_request_is_pinned() -> None:
    r = rig({m: [Answer()] for m in MODELS})
    headers = await ask(r, model="m2", pin=True)
    assert (headers[DECISION_HEADER], headers["x-model-manager-model"]) == ("pinned", "m2")


async def test_no_explain_header_unless_asked() -> None:
    r = rig({m: [Answer()] for m in MODELS})
    headers = await ask(r, explain=False)
    assert EXPLAIN_HEADER not in headers and headers[DECISION_HEADER] == "sampled"


async def test_access_line_and_failed_attempt_warnings_are_rate_limited(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = 5
    r = rig({"m1": [Fail(FailureKind.SERVER, 503, message="upstream down")] * (outage + 1),
             "m2": [Answer()] * (outage + 1)})
    r.services.access = AccessLog(r.clock, every_s=10.0)
    caplog.set_level(logging.INFO, logger="model_manager")
    for _ in range(outage):
        await ask(r, explain=False)
    access = [rec for rec in caplog.records if rec.name == "model_manager.access"]
    warnings = [rec for rec in caplog.records if rec.name == "model_manager.attempts"]
    assert len(access) == outage and len(warnings) == 1
    line = access[0].getMessage()
    assert "agent=a" in line and "model=m2" in line and "attempts=2" in line and "decision=fallback" in line
    assert "status=success" in line and "latency_ms=" in line and "ttft_ms=-" in line
    assert warnings[0].levelno == logging.WARNING
    assert "model=m1 error=server_error" in warnings[0].getMessage()
    r.clock.now += 10.0
    await ask(r, explain=False)
    warnings = [rec for rec in caplog.records if rec.name == "model_manager.attempts"]
    assert len(warnings) == 2
    assert f"({outage - 1} similar suppressed)" in warnings[1].getMessage()


async def test_metrics_count_decisions_by_kind_and_the_overhead_histogram() -> None:
    r = rig({"m1": [Fail(FailureKind.SERVER, 503), Answer()], "m2": [Answer()]})
    await ask(r, explain=False)
    await ask(r, explain=False)
    text = render({}, {}, {}, r.services.request_metrics)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    decisions = {s.labels["kind"]: s.value for s in families["model_manager_process_decisions"].samples}
    assert decisions == {"fallback": 1.0, "sampled": 1.0}
    overhead = families["model_manager_latency_overhead_seconds"].samples
    count = next(s.value for s in overhead if s.name.endswith("_count"))
    total = next(s.value for s in overhead if s.name.endswith("_sum"))
    assert count == 2 and total == pytest.approx(2 * 0.004)  # the store read, twice (READ_S)
