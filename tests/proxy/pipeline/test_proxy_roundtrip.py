"""Round trips through the real proxy with the official openai SDK: bodies, headers, SSE framing."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import orjson
import pytest
from support.proxy_harness import (
    MESSAGES,
    RunningProxy,
    _shared_proxy,
    module_proxy_factory,
    path,
    proxy,
    proxy_factory,
)
from support.servers import FakeUpstream

from proxy.pipeline.outcome import Status

__all__ = ["_shared_proxy", "module_proxy_factory", "path", "proxy", "proxy_factory"]

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
RESPONSE_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {"name": "answer", "schema": {"type": "object"}},
}
PASSED: dict[str, Any] = {
    "tools": TOOLS,
    "tool_choice": {"type": "function", "function": {"name": "weather"}},
    "response_format": RESPONSE_FORMAT,
    "temperature": 0.3,
    "max_tokens": 77,
    "stop": ["END", "STOP"],
    "n": 2,
    "user": "user-42",
}


def assert_passed_through(received: dict[str, Any], fields: dict[str, Any]) -> None:
    """Every client field arrived at the upstream unchanged."""
    for key, value in fields.items():
        assert received.get(key) == value, (key, received.get(key))


def only_body(upstream: FakeUpstream) -> dict[str, Any]:
    bodies = upstream.bodies()
    assert len(bodies) == 1, bodies
    body: dict[str, Any] = bodies[0]
    return body


def sse_data(text: str) -> list[str]:
    """The ``data:`` payloads of an SSE body, in order."""
    return [line[len("data: ") :] for line in text.split("\n") if line.startswith("data: ")]


def test_sync_non_stream_passes_every_field_and_sets_headers(
    proxy: RunningProxy, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.set_profile("m1", tool_arguments='{"city": "Paris"}')
    with proxy.client() as client:
        sent = time.perf_counter()
        raw = client.chat.completions.with_raw_response.create(model="auto", messages=MESSAGES, **PASSED)
        elapsed_ms = (time.perf_counter() - sent) * 1000
    reply = raw.parse()
    assert raw.headers["x-model-manager-model"] == "m1"
    assert raw.headers["x-model-manager-attempts"] == "1"
    assert raw.headers["x-request-id"].startswith("mm-")
    # the proxy's own time: never nothing (it parses, decides and relays), less than the round trip
    assert 0.0 < float(raw.headers["x-model-manager-overhead-ms"]) < elapsed_ms
    assert len(reply.choices) == 2
    call = reply.choices[0].message.tool_calls[0]
    assert (call.function.name, call.function.arguments) == ("weather", '{"city": "Paris"}')
    received = only_body(fake_upstream)
    assert received["model"] == "m1"
    assert_passed_through(received, PASSED)
    assert "stream" not in received or received["stream"] is False
    outcome, rewards = proxy.last()
    assert outcome.request_id == raw.headers["x-request-id"]
    assert outcome.status is Status.SUCCESS and outcome.model == "m1"
    assert outcome.summary is not None and outcome.summary.tool_calls[0][0] == "weather"
    assert set(rewards) == {"m1"}


async def test_async_non_stream(proxy: RunningProxy, fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_profile("m1", content="hello from the sim")
    async with proxy.async_client() as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="auto", messages=MESSAGES, temperature=0.1, user="u"
        )
    reply = raw.parse()
    assert reply.choices[0].message.content == "hello from the sim"
    assert reply.usage is not None and reply.usage.completion_tokens == 4
    assert raw.headers["x-model-manager-model"] == "m1"
    assert_passed_through(only_body(fake_upstream), {"temperature": 0.1, "user": "u"})


def test_sync_stream_passes_fields_and_usage_when_asked(
    proxy: RunningProxy, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.set_profile("m1", content="one two three", chunks=3, completion_tokens=3)
    fields = {**PASSED, "tool_choice": "none", "n": 1, "stream_options": {"include_usage": True}}
    with proxy.client() as client:
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=MESSAGES, stream=True, **fields
        )
        assert raw.headers["x-model-manager-model"] == "m1"
        assert raw.headers["x-model-manager-attempts"] == "1"
        assert raw.headers["content-type"].startswith("text/event-stream")
        chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3
    received = only_body(fake_upstream)
    assert received["stream"] is True
    assert_passed_through(received, {k: v for k, v in fields.items() if k != "stream_options"})
    assert received["stream_options"]["include_usage"] is True
    outcome, _ = proxy.last()
    assert outcome.status is Status.SUCCESS
    assert outcome.ttft_s is not None and outcome.ttft_s > 0
    assert outcome.summary is not None and outcome.summary.text == "one two three"
    assert outcome.summary.usage.completion_tokens == 3


async def test_async_stream_without_usage_has_no_usage_chunk(
    proxy: RunningProxy, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.set_profile("m1", content="abc def", chunks=2, completion_tokens=2)
    async with proxy.async_client() as client:
        stream = await client.chat.completions.create(model="auto", messages=MESSAGES, stream=True)
        chunks = [chunk async for chunk in stream]
    assert all(chunk.usage is None for chunk in chunks)
    assert all(chunk.choices for chunk in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "abc def"
    outcome, _ = proxy.last()
    # The proxy asks upstream for usage anyway, so learning still sees token counts.
    assert outcome.summary is not None and outcome.summary.usage.completion_tokens == 2


def test_raw_stream_ends_with_done_exactly_once(proxy: RunningProxy) -> None:
    body = {"model": "auto", "messages": MESSAGES, "stream": True}
    with httpx.stream(
        "POST", f"{proxy.base_url}/chat/completions", json=body, headers={"X-Agent": "a"}, timeout=10
    ) as response:
        assert response.status_code == 200
        assert response.headers["x-model-manager-model"] == "m1"
        text = response.read().decode()
    data = sse_data(text)
    assert data[-1] == "[DONE]"
    assert data.count("[DONE]") == 1
    chunks = [orjson.loads(item) for item in data[:-1]]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert all("usage" not in chunk or chunk["usage"] is None for chunk in chunks)
    assert text.endswith("data: [DONE]\n\n")


def test_raw_stream_usage_chunk_only_when_requested(proxy: RunningProxy) -> None:
    body = {"model": "auto", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    response = proxy.post(body, headers={"X-Agent": "a"})
    data = sse_data(response.text)
    usage_chunks = [orjson.loads(d) for d in data[:-1] if orjson.loads(d).get("usage")]
    assert len(usage_chunks) == 1
    assert usage_chunks[0]["choices"] == []
    assert data[-1] == "[DONE]"


def test_no_agent_header_uses_default_agent(proxy: RunningProxy) -> None:
    with proxy.client(agent=None) as client:
        client.chat.completions.create(model="auto", messages=MESSAGES)
    outcome, _ = proxy.last()
    assert outcome.agent == "default"


def test_workflow_header_reaches_outcome(proxy: RunningProxy) -> None:
    with proxy.client(default_headers={"X-Agent": "writer", "X-Workflow": "wf-123"}) as client:
        client.chat.completions.create(model="auto", messages=MESSAGES)
    outcome, _ = proxy.last()
    assert (outcome.agent, outcome.workflow) == ("writer", "wf-123")


def test_sdk_error_is_raised_as_openai_error(proxy: RunningProxy) -> None:
    with proxy.client() as client, pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="auto", messages=[])
    assert caught.value.code == "invalid_request"
    assert caught.value.param == "messages"
