"""A stream broken after its first chunk is continued by the next model, in the same SSE stream.

Real parts: the simulator under uvicorn, the proxy under uvicorn (direct forwarding), the
official openai SDK streaming.
"""

from __future__ import annotations

from typing import Any

import httpx
import openai
import orjson
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from support.proxy_harness import (
    MESSAGES,
    ProxyFactory,
    RunningProxy,
    basic_config,
    proxy_factory,
)
from support.servers import FakeUpstream
from support.waiting import wait_for

from proxy.forwarding.base import FailureKind
from proxy.pipeline.outcome import Outcome, Status
from proxy.pipeline.splice import CONTINUE_INSTRUCTION

__all__ = ["proxy_factory"]

FIRST = "The quick brown fox jumps over the lazy dog and keeps on running far away"
SECOND = "running far away."
BREAKS: dict[str, dict[str, Any]] = {
    "cut": {"cut_stream_after": 3},
    "stall": {"stall_stream_after": 3, "stall_ms": 3_000},
    "error-event": {"error_event_after": 3},
}


def kinds(outcome: Outcome) -> list[tuple[str, FailureKind | None]]:
    return [(attempt.model, attempt.failure) for attempt in outcome.attempts]


def start(proxy_factory: ProxyFactory, fake_upstream: FakeUpstream, **router: Any) -> RunningProxy:
    """m1, m2, m3 in that order; a read stalled past 1 s breaks the stream."""
    settings = {"attempt_timeout_s": 1, "first_chunk_timeout_s": 1, **router}
    return proxy_factory(basic_config(fake_upstream, ("m1", "m2", "m3"), router=settings))


def stream(proxy: RunningProxy, **kwargs: Any) -> list[Any]:
    with proxy.client() as client:
        return list(client.chat.completions.create(model="auto", messages=MESSAGES, stream=True, **kwargs))


def text_of(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@pytest.mark.parametrize("broken", BREAKS.values(), ids=BREAKS.keys())
def test_a_broken_stream_is_one_answer_continued_by_the_next_model(
    proxy_factory: ProxyFactory, fake_upstream: FakeUpstream, broken: dict[str, Any]
) -> None:
    proxy = start(proxy_factory, fake_upstream)
    fake_upstream.set_profile("m1", content=FIRST, chunks=6, **broken)
    fake_upstream.set_profile("m2", content=SECOND, chunks=3, prompt_tokens=11, completion_tokens=7)
    chunks = stream(proxy, stream_options={"include_usage": True})
    text = text_of(chunks)
    partial = text[: -len(SECOND)]
    assert text.endswith(SECOND) and partial and FIRST.startswith(partial) and partial != FIRST
    assert {c.id for c in chunks} == {chunks[0].id} and {c.model for c in chunks} == {chunks[0].model}
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.role) == 1
    final = chunks[-1]
    assert final.model_extra["x_model_manager"] == {"resumed_from": "m1", "resumed_by": "m2", "attempts": 2}
    assert [c for c in chunks if c.usage is not None] == [final]
    estimated = -(-len(partial) // 4)
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (11, 7 + estimated)
    continuation = fake_upstream.bodies()[1]["messages"]
    assert continuation[-2:] == [
        {"role": "assistant", "content": partial},
        {"role": "user", "content": CONTINUE_INSTRUCTION},
    ]
    outcome, rewards = proxy.last()
    assert outcome.status is Status.SUCCESS and outcome.model == "m2"
    assert kinds(outcome) == [("m1", FailureKind.STREAM_CUT), ("m2", None)]
    assert outcome.summary is not None and outcome.summary.text == text
    assert rewards["m1"] == 0.0 and rewards["m2"] > 0.0
    assert outcome.resumed_from == "m1"


def test_one_done_on_the_wire(proxy_factory: ProxyFactory, fake_upstream: FakeUpstream) -> None:
    proxy = start(proxy_factory, fake_upstream)
    fake_upstream.set_profile("m1", content=FIRST, chunks=6, cut_stream_after=3)
    response = proxy.post({"model": "auto", "messages": MESSAGES, "stream": True})
    assert response.status_code == 200
    assert response.text.count("data: [DONE]") == 1 and response.text.endswith("data: [DONE]\n\n")
    assert '"error"' not in response.text and '"resumed_by":"m2"' in response.text
    url = f"{proxy.base_url}/requests/{response.headers['x-request-id']}"
    wait_for(lambda: httpx.get(url).status_code == 200)
    record = httpx.get(url).json()
    assert (record["model"], record["resumed_from"]) == ("m2", "m1")


def test_with_resume_off_a_cut_ends_in_one_error_event(
    proxy_factory: ProxyFactory, fake_upstream: FakeUpstream
) -> None:
    proxy = start(proxy_factory, fake_upstream, resume_streams=False)
    fake_upstream.set_profile("m1", content=FIRST, chunks=6, cut_stream_after=3)
    with pytest.raises(openai.APIError):
        stream(proxy)
    outcome, rewards = proxy.last()
    assert outcome.status is Status.STREAM_ERROR and kinds(outcome) == [("m1", FailureKind.STREAM_CUT)]
    assert rewards == {"m1": 0.0} and [b["model"] for b in fake_upstream.bodies()] == ["m1"]


def test_no_model_left_ends_in_one_error_event(
    proxy_factory: ProxyFactory, fake_upstream: FakeUpstream
) -> None:
    proxy = start(proxy_factory, fake_upstream)
    fake_upstream.set_profile("m1", content=FIRST, chunks=6, cut_stream_after=3)
    for model in ("m2", "m3"):
        fake_upstream.set_profile(model, fail_status=500)
    response = proxy.post({"model": "auto", "messages": MESSAGES, "stream": True})
    assert response.text.count('"upstream_stream_error"') == 1 and "[DONE]" not in response.text
    outcome, rewards = proxy.last()
    assert outcome.status is Status.STREAM_ERROR
    assert kinds(outcome) == [
        ("m1", FailureKind.STREAM_CUT),
        ("m2", FailureKind.SERVER),
        ("m3", FailureKind.SERVER),
    ]
    assert rewards == {"m1": 0.0, "m2": 0.0, "m3": 0.0}


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


def test_a_tool_call_cut_mid_arguments_is_restarted_by_the_next_model_not_spliced(
    proxy_factory: ProxyFactory, fake_upstream: FakeUpstream
) -> None:
    """m1's stream is cut after its role chunk, the tool call's head and one piece of its
    arguments: none of that tool call reaches the client; m2 makes the call afresh."""
    proxy = start(proxy_factory, fake_upstream)
    fake_upstream.set_profile("m1", tool_call=True, chunks=6, cut_stream_after=4)
    fake_upstream.set_profile("m2", tool_call=True, chunks=3)
    state = ChatCompletionStreamState()
    with proxy.client() as client:
        for chunk in client.chat.completions.create(
            model="auto", messages=MESSAGES, stream=True, tools=TOOLS, tool_choice="auto"
        ):
            state.handle_chunk(chunk)
    message = state.get_final_completion().choices[0].message
    assert message.role == "assistant" and message.tool_calls is not None and len(message.tool_calls) == 1
    call = message.tool_calls[0]
    assert call.function.name == "weather" and set(orjson.loads(call.function.arguments)) == {"city"}
    assert call.id.count("call_") == 1
    assert state.get_final_completion().choices[0].finish_reason == "tool_calls"
    assert fake_upstream.bodies()[1]["messages"] == MESSAGES  # no text relayed: asked afresh
    outcome, rewards = proxy.last()
    assert outcome.status is Status.SUCCESS
    assert kinds(outcome) == [("m1", FailureKind.STREAM_CUT), ("m2", None)]
    assert outcome.summary is not None and [name for name, _ in outcome.summary.tool_calls] == ["weather"]
    assert outcome.summary.tool_calls[0][1] == call.function.arguments
    assert rewards["m1"] == 0.0 and outcome.resumed_from == "m1"
