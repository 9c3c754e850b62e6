"""The translated path (litellm's transforms over our HTTP client) against litellm.acompletion.

Two real proxies on the same fake Anthropic Messages API (a real uvicorn server): one with
``router.direct_translation`` on, one with it off. Every case runs through both, and the client
(the official openai SDK) must see the same answers, errors and fallbacks, and the upstream the
same request bodies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import openai
import orjson
import pytest
from support.fake_anthropic import FakeAnthropic, Reply
from support.proxy_harness import (
    MESSAGES,
    SECRET,
    ProxyFactory,
    RunningProxy,
    module_proxy_factory,
    proxy_factory,
)
from support.servers import UvicornThread, free_port

from proxy.forwarding.base import FailureKind
from proxy.pipeline.outcome import Outcome, Status

__all__ = ["module_proxy_factory", "proxy_factory"]

PATHS = ("translated", "litellm")
WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
FIELDS: dict[str, Any] = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": "Answer in English."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "user", "content": [{"type": "text", "text": "And"}, {"type": "text", "text": "tomorrow?"}]},
    ],
    "temperature": 0.3,
    "top_p": 0.9,
    "max_tokens": 77,
    "stop": ["END", "STOP"],
    "user": "user-42",
    "tools": [WEATHER],
    "tool_choice": {"type": "function", "function": {"name": "weather"}},
    "parallel_tool_calls": False,
}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}


def anthropic_entry(name: str, api_base: str, upstream: str) -> dict[str, Any]:
    params = {"model": f"anthropic/{upstream}", "api_base": api_base, "api_key": SECRET}
    return {"model_name": name, "litellm_params": params}


def anthropic_config(api_base: str, *, path: str, first_base: str | None = None) -> dict[str, Any]:
    """Models a1 (claude-one) and a2 (claude-two) on the fake, fixed order, one forwarding path."""
    router = {"policy": "fixed", "attempt_timeout_s": 5, "first_chunk_timeout_s": 5}
    return {
        "model_list": [
            anthropic_entry("a1", first_base or api_base, "claude-one"),
            anthropic_entry("a2", api_base, "claude-two"),
        ],
        "router": {**router, "direct_translation": path == "translated"},
    }


@pytest.fixture(scope="module")
def _fake_session() -> Iterator[tuple[FakeAnthropic, str]]:
    fake = FakeAnthropic()
    with UvicornThread(fake) as server:
        yield fake, server.url


@pytest.fixture
def fake(_fake_session: tuple[FakeAnthropic, str]) -> FakeAnthropic:
    """The fake Anthropic API, with no queued replies and no recorded requests."""
    _fake_session[0].reset()
    return _fake_session[0]


@pytest.fixture(scope="module")
def _proxies(
    module_proxy_factory: ProxyFactory, _fake_session: tuple[FakeAnthropic, str]
) -> dict[str, RunningProxy]:
    url = _fake_session[1]
    return {path: module_proxy_factory(anthropic_config(url, path=path)) for path in PATHS}


@pytest.fixture
def proxies(_proxies: dict[str, RunningProxy], fake: FakeAnthropic) -> dict[str, RunningProxy]:
    """Both proxies, outcomes and cooldowns cleared."""
    for proxy in _proxies.values():
        proxy.reset()
    return _proxies


Run = Callable[[RunningProxy], Any]


def on_both(
    proxies: dict[str, RunningProxy], fake: FakeAnthropic, run: Run, *replies: tuple[str, Reply]
) -> dict[str, tuple[Any, list[dict[str, Any]], Outcome]]:
    """``run`` on each proxy with the same queued replies: (result, upstream requests, outcome)."""
    results = {}
    for path, proxy in proxies.items():
        fake.reset()
        for model, reply in replies:
            fake.queue(model, reply)
        proxy.reset()
        result = run(proxy)
        outcome, _ = proxy.last()
        results[path] = (result, list(fake.requests), outcome)
    return results


def assert_same(results: dict[str, Any], pick: Callable[[Any], Any]) -> Any:
    """``pick`` of both paths' results is equal; returns it."""
    picked = {path: pick(result) for path, result in results.items()}
    assert picked["translated"] == picked["litellm"], picked
    return picked["translated"]


def assert_paths(results: dict[str, tuple[Any, list[dict[str, Any]], Outcome]]) -> None:
    """The translated proxy called upstream over aiohttp, the other through litellm (httpx)."""
    for path, (_, requests, _) in results.items():
        agents = {"aiohttp" in r["headers"].get("user-agent", "").lower() for r in requests}
        assert agents == {path == "translated"}, (path, [r["headers"].get("user-agent") for r in requests])


def kinds(outcome: Outcome) -> list[tuple[str, FailureKind | None]]:
    return [(attempt.model, attempt.failure) for attempt in outcome.attempts]


def create(**fields: Any) -> Run:
    def run(proxy: RunningProxy) -> Any:
        with proxy.client() as client:
            raw = client.chat.completions.with_raw_response.create(
                model="auto", **{"messages": MESSAGES, **fields}
            )
        return raw.headers["x-model-manager-model"], raw.parse()

    return run


def stream(**fields: Any) -> Run:
    def run(proxy: RunningProxy) -> Any:
        with proxy.client() as client:
            return list(
                client.chat.completions.create(model="auto", stream=True, **{"messages": MESSAGES, **fields})
            )

    return run


def sent(requests: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
    """What reached upstream: path, body and the headers litellm sets."""
    keys = ("x-api-key", "anthropic-version", "anthropic-beta", "content-type")
    return [(r["path"], r["body"], {k: r["headers"].get(k, "") for k in keys}) for r in requests]


# --- answers ---------------------------------------------------------------------------


def test_json_answer_and_request_match(proxies: dict[str, RunningProxy], fake: FakeAnthropic) -> None:
    results = on_both(proxies, fake, create(), ("claude-one", Reply(text="Bonjour tout le monde")))
    assert_paths(results)
    model, reply = results["translated"][0]
    assert model == "a1"
    assert assert_same(results, lambda r: r[0][1].choices[0].message.content) == "Bonjour tout le monde"
    assert assert_same(results, lambda r: r[0][1].choices[0].finish_reason) == "stop"
    usage = assert_same(
        results, lambda r: r[0][1].usage.model_dump(include={"prompt_tokens", "completion_tokens"})
    )
    assert usage == {"prompt_tokens": 11, "completion_tokens": 7} and reply.usage.total_tokens == 18
    requests = assert_same(results, lambda r: sent(r[1]))
    assert requests[0][0] == "/v1/messages" and requests[0][2]["x-api-key"] == SECRET
    outcome = assert_same(results, lambda r: (r[2].status, kinds(r[2]), r[2].summary.usage))
    assert outcome[0] is Status.SUCCESS


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize("case", ["fields", "json_schema", "json_object"])
def test_request_bodies_sent_upstream_match(
    proxies: dict[str, RunningProxy], fake: FakeAnthropic, case: str, streamed: bool
) -> None:
    fields = {
        "fields": FIELDS,
        "json_schema": {"response_format": JSON_SCHEMA, "max_completion_tokens": 50},
        "json_object": {"response_format": {"type": "json_object"}, "n": 1},
    }[case]
    run = stream(**fields) if streamed else create(**fields)
    results = on_both(proxies, fake, run)
    assert_paths(results)
    requests = assert_same(results, lambda r: sent(r[1]))
    assert len(requests) == 1 and requests[0][1]["model"] == "claude-one"
    assert requests[0][1].get("stream", False) is streamed


def test_tool_call_answer_matches(proxies: dict[str, RunningProxy], fake: FakeAnthropic) -> None:
    reply = Reply(text="Checking.", tool=("toolu_1", "weather", {"city": "Paris"}), stop_reason="tool_use")
    results = on_both(proxies, fake, create(tools=[WEATHER]), ("claude-one", reply))
    assert_paths(results)
    calls = assert_same(
        results,
        lambda r: [
            (c.id, c.function.name, orjson.loads(c.function.arguments))
            for c in r[0][1].choices[0].message.tool_calls
        ],
    )
    assert calls == [("toolu_1", "weather", {"city": "Paris"})]
    assert assert_same(results, lambda r: r[0][1].choices[0].finish_reason) == "tool_calls"


@pytest.mark.parametrize("include_usage", [False, True])
def test_stream_matches(proxies: dict[str, RunningProxy], fake: FakeAnthropic, include_usage: bool) -> None:
    options = {"stream_options": {"include_usage": True}} if include_usage else {}
    reply = Reply(text="one two three four", input_tokens=21, output_tokens=4)
    results = on_both(proxies, fake, stream(**options), ("claude-one", reply))
    assert_paths(results)
    text = assert_same(
        results, lambda r: "".join(c.choices[0].delta.content or "" for c in r[0] if c.choices)
    )
    assert text == "one two three four"
    finish = assert_same(
        results,
        lambda r: [c.choices[0].finish_reason for c in r[0] if c.choices and c.choices[0].finish_reason],
    )
    assert finish == ["stop"]
    usage = assert_same(
        results,
        lambda r: [
            (c.usage.prompt_tokens, c.usage.completion_tokens, c.usage.total_tokens) for c in r[0] if c.usage
        ],
    )
    assert usage == ([(21, 4, 25)] if include_usage else [])
    assert_same(results, lambda r: [c.choices[0].delta.role for c in r[0] if c.choices][:1])
    chunks = results["translated"][0]
    assert (
        len({c.id for c in chunks}) == 1
        and len({c.model for c in chunks}) == 1
        and len({c.created for c in chunks}) == 1
    )
    assert (
        assert_same(results, lambda r: (r[2].summary.usage, r[2].summary.text, r[2].summary.finish_reason))[
            0
        ].prompt_tokens
        == 21
    )


def test_stream_raw_frames_end_with_done(proxies: dict[str, RunningProxy], fake: FakeAnthropic) -> None:
    body = {"model": "auto", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}

    def run(proxy: RunningProxy) -> list[str]:
        response = proxy.post(body, headers={"X-Agent": "a"})
        assert response.status_code == 200
        return [line[6:] for line in response.text.split("\n") if line.startswith("data: ")]

    results = on_both(proxies, fake, run)
    for frames, _, _ in results.values():
        assert frames[-1] == "[DONE]"
        payloads = [orjson.loads(frame) for frame in frames[:-1]]
        assert payloads[-1]["choices"] == [] and payloads[-1]["usage"]["total_tokens"] == 18
        assert all(p["object"] == "chat.completion.chunk" for p in payloads)
        assert all("error" not in p for p in payloads)


def test_stream_tool_call_matches(proxies: dict[str, RunningProxy], fake: FakeAnthropic) -> None:
    reply = Reply(text="", tool=("toolu_9", "weather", {"city": "Oslo"}), stop_reason="tool_use")
    results = on_both(proxies, fake, stream(tools=[WEATHER]), ("claude-one", reply))

    def calls(result: Any) -> list[tuple[str | None, str, str]]:
        found: dict[int, list[Any]] = {}
        for chunk in result[0]:
            for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                entry = found.setdefault(call.index, [None, "", ""])
                entry[0] = entry[0] or call.id
                entry[1] += call.function.name or "" if call.function else ""
                entry[2] += call.function.arguments or "" if call.function else ""
        return [(e[0], e[1], e[2]) for _, e in sorted(found.items())]

    tool_calls = assert_same(results, calls)
    assert [(i, n, orjson.loads(a)) for i, n, a in tool_calls] == [("toolu_9", "weather", {"city": "Oslo"})]
    assert assert_same(
        results,
        lambda r: [c.choices[0].finish_reason for c in r[0] if c.choices and c.choices[0].finish_reason],
    ) == ["tool_calls"]


# --- errors and fallback ---------------------------------------------------------------

FALLBACKS: dict[str, tuple[Reply, FailureKind]] = {
    "500": (Reply(status=500), FailureKind.SERVER),
    "529": (Reply(status=529, error_type="overloaded_error", error_message="Overloaded"), FailureKind.SERVER),
    "401": (
        Reply(status=401, error_type="authentication_error", error_message="invalid x-api-key"),
        FailureKind.AUTH,
    ),
    "429": (
        Reply(
            status=429,
            error_type="rate_limit_error",
            error_message="slow down",
            headers={"retry-after": "30"},
        ),
        FailureKind.RATE_LIMITED,
    ),
    "context_window": (
        Reply(
            status=400,
            error_type="invalid_request_error",
            error_message="prompt is too long: 300000 tokens > 200000 maximum",
        ),
        FailureKind.CONTEXT_WINDOW,
    ),
}


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize("name", list(FALLBACKS))
def test_failure_falls_back_like_acompletion(
    proxies: dict[str, RunningProxy], fake: FakeAnthropic, name: str, streamed: bool
) -> None:
    reply, kind = FALLBACKS[name]
    call = stream() if streamed else create()

    def run(proxy: RunningProxy) -> Any:
        call(proxy)
        return proxy.services.cooldowns.resting("a1")

    results = on_both(proxies, fake, run, ("claude-one", reply))
    assert_paths(results)
    assert assert_same(results, lambda r: kinds(r[2])) == [("a1", kind), ("a2", None)]
    assert assert_same(results, lambda r: [b["body"]["model"] for b in r[1]]) == ["claude-one", "claude-two"]
    first, second = results["translated"][1]
    assert first["body"]["messages"] == second["body"]["messages"]  # the fallback got the same request
    # a 429 rests the model, and so does an error of its own credentials
    assert assert_same(results, lambda r: r[0]) == (kind is FailureKind.RATE_LIMITED or kind.rests_model)


def test_client_error_returns_at_once_like_acompletion(
    proxies: dict[str, RunningProxy], fake: FakeAnthropic
) -> None:
    reply = Reply(status=400, error_type="invalid_request_error", error_message="messages: field required")

    def run(proxy: RunningProxy) -> Any:
        with proxy.client() as client, pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="auto", messages=MESSAGES)
        error = caught.value
        assert SECRET not in error.response.text
        return (
            error.status_code,
            error.response.json()["error"]["type"],
            error.response.headers["x-model-manager-attempts"],
        )

    results = on_both(proxies, fake, run, ("claude-one", reply))
    assert assert_same(results, lambda r: r[0]) == (400, "invalid_request_error", "1")
    assert assert_same(results, lambda r: (r[2].status, kinds(r[2]))) == (
        Status.CLIENT_ERROR,
        [("a1", FailureKind.CLIENT)],
    )


def test_all_failing_is_502_like_acompletion(proxies: dict[str, RunningProxy], fake: FakeAnthropic) -> None:
    def run(proxy: RunningProxy) -> Any:
        response = proxy.post({"model": "auto", "messages": MESSAGES}, headers={"X-Agent": "a"})
        assert SECRET not in response.text
        return response.status_code, [d["error"] for d in response.json()["error"]["details"]]

    replies = [
        ("claude-one", Reply(status=503)),
        ("claude-two", Reply(status=401, error_type="authentication_error")),
    ]
    results = on_both(proxies, fake, run, *replies)
    assert assert_same(results, lambda r: r[0]) == (502, ["server_error", "auth_error"])


@pytest.mark.parametrize("streamed", [False, True])
def test_connection_refused_falls_back_like_acompletion(
    proxy_factory: ProxyFactory, fake: FakeAnthropic, _fake_session: tuple[FakeAnthropic, str], streamed: bool
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    proxies = {p: proxy_factory(anthropic_config(_fake_session[1], path=p, first_base=dead)) for p in PATHS}
    results = on_both(proxies, fake, stream() if streamed else create())
    assert assert_same(results, lambda r: kinds(r[2])) == [("a1", FailureKind.CONNECTION), ("a2", None)]
    assert_paths(results)


@pytest.mark.parametrize("cut", ["error_event_after", "cut_after"])
def test_stream_broken_midway_ends_with_error_event(
    proxies: dict[str, RunningProxy], fake: FakeAnthropic, cut: str
) -> None:
    # events arrive 20 ms apart: litellm drops events that arrive together with a reset
    reply = Reply(text="a b c d e f", interval_s=0.02, cut_after=5 if cut == "cut_after" else None)
    reply = replace(reply, error_event_after=5) if cut == "error_event_after" else reply

    def run(proxy: RunningProxy) -> Any:
        response = proxy.post(
            {"model": "auto", "messages": MESSAGES, "stream": True}, headers={"X-Agent": "a"}
        )
        assert response.status_code == 200 and SECRET not in response.text
        frames = [orjson.loads(line[6:]) for line in response.text.split("\n") if line.startswith("data: {")]
        assert "[DONE]" not in response.text and "error" in frames[-1]
        return "".join(f["choices"][0]["delta"].get("content", "") for f in frames if f.get("choices"))

    results = on_both(proxies, fake, run, ("claude-one", reply), ("claude-two", Reply(status=500)))
    assert assert_same(results, lambda r: (r[2].status, kinds(r[2]))) == (
        Status.STREAM_ERROR,
        [("a1", FailureKind.STREAM_CUT), ("a2", FailureKind.SERVER)],
    )
    assert assert_same(results, lambda r: r[0]) == "a b c"
    assert_paths(results)


@pytest.mark.parametrize("cut", ["error_event_after", "cut_after"])
def test_stream_broken_midway_is_continued_by_the_next_model(
    proxies: dict[str, RunningProxy], fake: FakeAnthropic, cut: str
) -> None:
    reply = Reply(text="a b c d e f", interval_s=0.02, cut_after=5 if cut == "cut_after" else None)
    reply = replace(reply, error_event_after=5) if cut == "error_event_after" else reply

    def run(proxy: RunningProxy) -> Any:
        response = proxy.post(
            {"model": "auto", "messages": MESSAGES, "stream": True}, headers={"X-Agent": "a"}
        )
        assert response.status_code == 200 and response.text.count("data: [DONE]") == 1
        frames = [orjson.loads(line[6:]) for line in response.text.split("\n") if line.startswith("data: {")]
        assert frames[-1]["x_model_manager"] == {"resumed_from": "a1", "resumed_by": "a2", "attempts": 2}
        return "".join(f["choices"][0]["delta"].get("content", "") for f in frames if f.get("choices"))

    results = on_both(proxies, fake, run, ("claude-one", reply), ("claude-two", Reply(text=" d e f.")))
    assert assert_same(results, lambda r: (r[2].status, kinds(r[2]))) == (
        Status.SUCCESS,
        [("a1", FailureKind.STREAM_CUT), ("a2", None)],
    )
    assert assert_same(results, lambda r: r[0]) == "a b c d e f."


def test_unverified_request_field_goes_through_acompletion(
    proxies: dict[str, RunningProxy], fake: FakeAnthropic
) -> None:
    proxy = proxies["translated"]
    create(metadata={"user_id": "u-1"})(proxy)
    assert "aiohttp" not in fake.requests[0]["headers"].get("user-agent", "")
    fake.reset()
    create()(proxy)
    assert "aiohttp" in fake.requests[0]["headers"].get("user-agent", "")
