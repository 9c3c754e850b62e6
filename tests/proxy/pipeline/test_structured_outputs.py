"""Structured outputs through the proxy, on both forwarding paths, with the official openai SDK.

The simulator behind the proxy honours ``response_format`` and tool schemas; a model with
``bad_json_rate`` or ``bad_tool_call_rate`` 1.0 is caught by the quality heuristic: lower
quality in ``/v1/stats`` and lower rewards than a healthy model.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from pydantic import BaseModel, Field
from support.proxy_harness import (
    ProxyFactory,
    RunningProxy,
    _shared_proxy,
    basic_config,
    module_proxy_factory,
    path,
    proxy,
    proxy_factory,
)
from support.servers import FakeUpstream
from support.waiting import wait_for

from proxy.pipeline.outcome import Status

__all__ = ["_shared_proxy", "module_proxy_factory", "path", "proxy", "proxy_factory"]


class Step(BaseModel):
    title: str
    minutes: int = Field(ge=1)


class Plan(BaseModel):
    goal: str
    steps: list[Step] = Field(min_length=1)
    risky: bool


class Lookup(BaseModel):
    query: str
    limit: int = Field(ge=3, le=10)


LOOKUP = openai.pydantic_function_tool(Lookup, name="lookup")
TOOL_SCHEMA: dict[str, Any] = dict(LOOKUP["function"]).get("parameters", {})


def test_sdk_parse_through_the_proxy(proxy: RunningProxy) -> None:
    with proxy.client() as client:
        completion = client.chat.completions.parse(
            model="auto", messages=[{"role": "user", "content": "Plan my day"}], response_format=Plan
        )
    assert isinstance(completion.choices[0].message.parsed, Plan)
    outcome, rewards = proxy.last()
    assert outcome.status is Status.SUCCESS and outcome.wants_json
    assert rewards["m1"] > 0.5


def test_sdk_tool_call_through_the_proxy(proxy: RunningProxy) -> None:
    with proxy.client() as client:
        completion = client.chat.completions.parse(
            model="auto",
            messages=[{"role": "user", "content": "Use the lookup tool for 'routing'"}],
            tools=[LOOKUP],
        )
        stream = client.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": "call lookup"}],
            tools=[LOOKUP],  # type: ignore[list-item]
            stream=True,
        )
        chunks = [c for c in stream if c.choices]
    (call,) = completion.choices[0].message.tool_calls or []
    assert completion.choices[0].finish_reason == "tool_calls"
    assert isinstance(call.function.parsed_arguments, Lookup)
    deltas = [d for c in chunks for d in c.choices[0].delta.tool_calls or []]
    assert deltas[0].function is not None and deltas[0].function.name == "lookup"
    arguments = "".join(d.function.arguments or "" for d in deltas if d.function)
    jsonschema.validate(json.loads(arguments), TOOL_SCHEMA)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def stats_rows(proxy: RunningProxy, agent: str) -> dict[str, dict[str, Any]]:
    """The agent's ``/v1/stats`` rows by model."""
    body = httpx.get(f"{proxy.base_url}/stats", params={"agent": agent}, timeout=10).json()
    return {row["model"]: row for entry in body["agents"] for row in entry["models"]}


def ask(client: openai.OpenAI, model: str, *, stream: bool, **kwargs: Any) -> None:
    """One request pinned to ``model`` (the proxy respects concrete names here)."""
    messages: Any = [{"role": "user", "content": "lookup the plan"}]
    if stream:
        _ = list(client.chat.completions.create(model=model, messages=messages, stream=True, **kwargs))
    else:
        client.chat.completions.create(model=model, messages=messages, **kwargs)


CASES = [
    pytest.param({"bad_json_rate": 1.0}, {"response_format": {"type": "json_object"}}, id="json-object"),
    pytest.param({"bad_tool_call_rate": 1.0}, {"tools": [LOOKUP]}, id="tool-calls"),
]


@pytest.mark.parametrize(("faults", "request_fields"), CASES)
def test_quality_heuristic_catches_the_faulty_model(
    proxy_factory: ProxyFactory,
    fake_upstream: FakeUpstream,
    path: str,
    faults: dict[str, Any],
    request_fields: dict[str, Any],
) -> None:
    fake_upstream.set_profile("bad", **faults)
    proxy = proxy_factory(
        basic_config(fake_upstream, ("good", "bad"), path=path, router={"model_field": "respect"})
    )
    with proxy.client(agent="checker") as client:
        for model in ("good", "bad"):
            for stream in (False, True):
                ask(client, model, stream=stream, **request_fields)
    recorded = proxy.outcomes(4)
    rewards = {model: [r[model] for o, r in recorded if o.model == model] for model in ("good", "bad")}
    assert len(rewards["good"]) == len(rewards["bad"]) == 2
    assert max(rewards["bad"]) < min(rewards["good"])
    wait_for(lambda: sum(row.get("successes", 0) for row in stats_rows(proxy, "checker").values()) >= 4)
    rows = stats_rows(proxy, "checker")
    assert rows["good"]["quality_mean"] == 1.0
    assert rows["bad"]["quality_mean"] == pytest.approx(0.4)  # 1 - the 0.6 penalty, every answer
