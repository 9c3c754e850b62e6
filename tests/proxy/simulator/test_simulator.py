# ruff: noqa: E402  (the environment must be set before litellm is imported)
"""The simulator, driven by real clients (openai SDK, litellm) over a real uvicorn server.

The litellm tests double as the record of which exception litellm raises for each
upstream failure kind; proxy/forwarding/litellm_upstream.py maps exactly these.
"""

from __future__ import annotations

import os

for _name, _value in (
    ("LITELLM_LOCAL_MODEL_COST_MAP", "True"),
    ("LITELLM_OFFLINE_MODE", "true"),
    ("LITELLM_TELEMETRY_DISABLED", "true"),
):
    os.environ.setdefault(_name, _value)

from collections.abc import Iterator
from typing import Any

import httpx
import litellm
import openai
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from support.servers import FakeUpstream, UvicornThread
from support.waiting import wait_for

from proxy.simulator.app import SimProfile, create_simulator_app
from proxy.simulator.reply import CONTEXT_WINDOW_MESSAGE, split_text
from proxy.simulator.state import SimState

MESSAGES = [{"role": "user", "content": "Say hello"}]
TOOLS = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]





@pytest.fixture
def client(fake_upstream: FakeUpstream) -> Iterator[openai.OpenAI]:
    """A sync openai client on the simulator, without SDK retries."""
    with openai.OpenAI(base_url=fake_upstream.url, api_key="x", max_retries=0) as sdk:
        yield sdk


async def litellm_call(upstream: FakeUpstream, model: str, **kwargs: Any) -> Any:
    """litellm.acompletion to the simulator as an ``openai/`` model, no retries by default."""
    kwargs.setdefault("max_retries", 0)
    return await litellm.acompletion(
        model=f"openai/{model}",
        api_base=upstream.url,
        api_key="x",
        messages=MESSAGES,
        **kwargs,
    )


# --- openai SDK ------------------------------------------------------------------------


def test_sdk_completion_echoes_model_and_usage(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="m1", messages=MESSAGES)  # type: ignore[arg-type]
    assert reply.model == "m1"
    assert reply.choices[0].message.content == "Simulated reply from m1."
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.total_tokens == 2 + 4


def test_sdk_stream_with_usage(client: openai.OpenAI, fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_profile("m1", content="one two three", chunks=3, completion_tokens=3)
    stream = client.chat.completions.create(
        model="m1",
        messages=MESSAGES,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three"
    assert [c.choices[0].finish_reason for c in chunks[-2:-1]] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3
    assert len(chunks) == 1 + 3 + 1 + 1


async def test_async_sdk_stream_and_json(fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_profile("m2", content="abc", finish_reason="length")
    async with openai.AsyncOpenAI(base_url=fake_upstream.url, api_key="x") as sdk:
        reply = await sdk.chat.completions.create(model="m2", messages=MESSAGES)  # type: ignore[arg-type]
        stream = await sdk.chat.completions.create(model="m2", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
        deltas = [c.choices[0].delta.content or "" async for c in stream]
    assert reply.choices[0].message.content == "abc"
    assert reply.choices[0].finish_reason == "length"
    assert "".join(deltas) == "abc"


def test_sdk_tool_call(client: openai.OpenAI, fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_profile("t", tool_call=True, tool_arguments='{"city": "Paris"}')
    reply = client.chat.completions.create(model="t", messages=MESSAGES, tools=TOOLS)  # type: ignore[arg-type]
    call = reply.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert reply.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, call.function.arguments) == ("weather", '{"city": "Paris"}')  # type: ignore[union-attr]
    stream = client.chat.completions.create(model="t", messages=MESSAGES, tools=TOOLS, stream=True)  # type: ignore[arg-type]
    calls = [tc for c in stream if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert calls[0].function.name == "weather"  # type: ignore[union-attr]
    assert "".join(c.function.arguments or "" for c in calls) == '{"city": "Paris"}'  # type: ignore[union-attr]


def test_tool_choice_required_forces_a_call_and_n_choices(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="m1",
        messages=MESSAGES,  # type: ignore[arg-type]
        tools=TOOLS,  # type: ignore[arg-type]
        tool_choice="required",
        n=2,
    )
    assert [c.index for c in reply.choices] == [0, 1]
    assert reply.choices[1].message.tool_calls[0].function.name == "weather"  # type: ignore[index, union-attr]


def test_sdk_errors(client: openai.OpenAI, fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_profile("limited", fail_status=429, retry_after_s=2)
    fake_upstream.set_profile("long", context_window_error=True)
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="limited", messages=MESSAGES)  # type: ignore[arg-type]
    assert limited.value.response.headers["retry-after"] == "2"
    with pytest.raises(openai.BadRequestError) as long:
        client.chat.completions.create(model="long", messages=MESSAGES)  # type: ignore[arg-type]
    assert long.value.code == "context_length_exceeded"
    assert long.value.body["message"] == CONTEXT_WINDOW_MESSAGE  # type: ignore[index]


def test_sdk_cut_stream_is_a_protocol_error(client: openai.OpenAI, fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_profile("cut", cut_stream_after=3)
    received = []
    with pytest.raises(httpx.RemoteProtocolError):
        for chunk in client.chat.completions.create(model="cut", messages=MESSAGES, stream=True):  # type: ignore[arg-type]
            received.append(chunk)
    assert len(received) == 3
    assert fake_upstream.stats()["cut"]["errors"] == 1


def test_html_error_sends_a_page(fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_profile("gateway", fail_status=502, html_error=True)
    body = {"model": "gateway", "messages": MESSAGES}
    response = httpx.post(f"{fake_upstream.url}/chat/completions", json=body)
    assert response.status_code == 502
    assert response.headers["content-type"] == "text/html"
    assert response.text.startswith("<html>") and "<h1>502 " in response.text


def test_cut_body_stops_half_way(fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_profile("halfway", cut_body=True)
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(f"{fake_upstream.url}/chat/completions", json={"model": "halfway", "messages": MESSAGES})
    assert fake_upstream.stats()["halfway"]["errors"] == 1


def test_hang_times_out_and_counts_cancelled(client: openai.OpenAI, fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_profile("stuck", hang=True)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="stuck", messages=MESSAGES, timeout=0.2)  # type: ignore[arg-type]
    wait_for(lambda: fake_upstream.stats()["stuck"]["cancelled"] == 1)


def test_closing_a_stream_early_counts_cancelled(client: openai.OpenAI, fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_profile("slow", chunks=50, chunk_interval_ms=20)
    stream = client.chat.completions.create(model="slow", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    next(iter(stream))
    stream.close()
    wait_for(lambda: fake_upstream.stats()["slow"] == {**_zero(), "requests": 1, "cancelled": 1})


def _zero() -> dict[str, int]:
    return {"requests": 0, "completed": 0, "errors": 0, "cancelled": 0}


# --- litellm: success, pass-through, and the exception each failure kind raises -------------


async def test_litellm_completion_and_stream(fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_profile("m1", content="hello world", chunks=2)
    reply = await litellm_call(fake_upstream, "m1")
    assert reply.choices[0].message.content == "hello world"
    stream = await litellm_call(fake_upstream, "m1", stream=True)
    text = [c.choices[0].delta.content or "" async for c in stream]
    assert "".join(text) == "hello world"
    assert [r["body"]["model"] for r in fake_upstream.requests()] == ["m1", "m1"]


async def test_litellm_passes_parameters_through(fake_upstream: FakeUpstream) -> None:
    params: dict[str, Any] = {
        "tools": TOOLS,
        "tool_choice": "auto",
        "response_format": {"type": "json_object"},
        "temperature": 0.3,
        "max_tokens": 17,
        "stop": ["END"],
        "n": 2,
        "seed": 3,
    }
    await litellm_call(fake_upstream, "m1", **params)
    options = {"include_usage": True}
    stream = await litellm_call(fake_upstream, "m1", stream=True, stream_options=options, **params)
    _ = [c async for c in stream]
    plain, streamed = fake_upstream.bodies()
    assert {k: plain[k] for k in params} == params
    assert streamed["stream"] is True and streamed["stream_options"] == options


async def test_litellm_drops_user_for_models_outside_openais_catalog(
    fake_upstream: FakeUpstream,
) -> None:
    await litellm_call(fake_upstream, "m1", user="u-1")
    await litellm_call(fake_upstream, "gpt-4o", user="u-1")
    await litellm_call(fake_upstream, "m1", extra_body={"user": "u-1"})
    assert [b.get("user") for b in fake_upstream.bodies()] == [None, "u-1", "u-1"]


FAILURES = [
    pytest.param({"fail_status": 500}, litellm.InternalServerError, 500, id="500"),
    pytest.param({"fail_status": 503}, litellm.ServiceUnavailableError, 503, id="503"),
    pytest.param({"fail_status": 429}, litellm.RateLimitError, 429, id="429"),
    pytest.param({"fail_status": 400}, litellm.BadRequestError, 400, id="400"),
    pytest.param({"fail_status": 401}, litellm.AuthenticationError, 401, id="401"),
    pytest.param({"fail_status": 404}, litellm.NotFoundError, 404, id="404"),
    pytest.param({"context_window_error": True}, litellm.ContextWindowExceededError, 400, id="ctx"),
]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize(("fields", "error", "status"), FAILURES)
async def test_litellm_error_statuses(
    fake_upstream: FakeUpstream,
    fields: dict[str, Any],
    error: type[Exception],
    status: int,
    stream: bool,
) -> None:
    fake_upstream.set_profile("bad", **fields)
    with pytest.raises(error) as caught:
        await litellm_call(fake_upstream, "bad", stream=stream)
    assert caught.value.status_code == status  # type: ignore[attr-defined]
    assert fake_upstream.stats()["bad"]["requests"] == 1


async def test_litellm_exposes_retry_after(fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_profile("limited", fail_status=429, retry_after_s=1.5)
    with pytest.raises(litellm.RateLimitError) as caught:
        await litellm_call(fake_upstream, "limited")
    assert caught.value.litellm_response_headers["retry-after"] == "1.5"
    assert "retry-after" not in caught.value.response.headers  # litellm's own stand-in response


async def test_litellm_retries_twice_by_default(fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_profile("bad", fail_status=500)
    with pytest.raises(litellm.InternalServerError):
        await litellm_call(fake_upstream, "bad", max_retries=None)
    assert fake_upstream.stats()["bad"]["requests"] == 3


async def test_litellm_malformed_json(fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_profile("junk", malformed_json=True)
    with pytest.raises(litellm.InternalServerError) as caught:
        await litellm_call(fake_upstream, "junk")
    assert caught.value.status_code == 500
    stream = await litellm_call(fake_upstream, "junk", stream=True)
    with pytest.raises(litellm.exceptions.MidStreamFallbackError):
        _ = [c async for c in stream]


@pytest.mark.parametrize("cut_after", [0, 1, 3])
async def test_litellm_cut_stream(fake_upstream: FakeUpstream, cut_after: int) -> None:
    fake_upstream.set_profile("cut", cut_stream_after=cut_after, content="abcd", chunks=4)
    stream = await litellm_call(fake_upstream, "cut", stream=True)
    received = []
    with pytest.raises(litellm.exceptions.MidStreamFallbackError) as caught:
        async for chunk in stream:
            received.append(chunk)
    assert len(received) == cut_after
    assert isinstance(caught.value, litellm.ServiceUnavailableError)
    assert caught.value.status_code == 500
    assert caught.value.generated_content == "abcd"[: max(0, cut_after - 1)]


async def test_litellm_timeouts(fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_profile("stuck", hang=True)
    fake_upstream.set_profile("gappy", chunks=2, chunk_interval_ms=600)
    with pytest.raises(litellm.Timeout) as caught:
        await litellm_call(fake_upstream, "stuck", timeout=0.2)
    assert caught.value.status_code == 408
    with pytest.raises(litellm.Timeout):
        await litellm_call(fake_upstream, "stuck", timeout=0.2, stream=True)
    stream = await litellm_call(fake_upstream, "gappy", timeout=0.3, stream=True)
    with pytest.raises(litellm.exceptions.MidStreamFallbackError):  # a read timeout mid-stream
        _ = [c async for c in stream]
    wait_for(lambda: fake_upstream.stats()["stuck"]["cancelled"] == 2)


# --- control API -----------------------------------------------------------------------------


def test_script_steps_run_once_in_order(client: openai.OpenAI, fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_profile("m1", content="steady")
    assert fake_upstream.script("m1", [{"fail_status": 503}, {"content": "scripted"}]) == 2
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="m1", messages=MESSAGES)  # type: ignore[arg-type]
    contents = [
        client.chat.completions.create(model="m1", messages=MESSAGES).choices[0].message.content  # type: ignore[arg-type]
        for _ in range(2)
    ]
    assert contents == ["scripted", "steady"]
    assert fake_upstream.stats()["m1"] == {"requests": 3, "completed": 2, "errors": 1, "cancelled": 0}


def test_request_log(client: openai.OpenAI, fake_upstream: FakeUpstream) -> None:
    client.chat.completions.create(
        model="m1",
        messages=MESSAGES,
        extra_headers={"X-Agent": "a1"},  # type: ignore[arg-type]
    )
    (entry,) = fake_upstream.requests()
    assert (entry["method"], entry["path"]) == ("POST", "/v1/chat/completions")
    assert entry["headers"]["x-agent"] == "a1"
    assert entry["headers"]["authorization"] == "Bearer x"
    assert entry["body"] == {"model": "m1", "messages": MESSAGES}
    fake_upstream.client.delete("/_sim/requests").raise_for_status()
    assert fake_upstream.requests() == []


def test_profiles_validate_and_reset(fake_upstream: FakeUpstream) -> None:
    bad = [{"latency": 5}, {"chunks": "4"}, {"hang": 1}, {"failure_rate": True}]
    for fields in bad:
        response = fake_upstream.client.put("/_sim/profiles/m1", json=fields)
        assert response.status_code == 422, fields
    fake_upstream.set_profile("openai/gpt-x", latency_ms=1)
    models = httpx.get(f"{fake_upstream.url}/models").json()["data"]
    assert [m["id"] for m in models] == ["openai/gpt-x"]
    fake_upstream.reset()
    assert httpx.get(f"{fake_upstream.url}/models").json()["data"] == []


def test_default_profile_applies_to_unknown_models(
    client: openai.OpenAI, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.set_default(fail_status=503)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="anything", messages=MESSAGES)  # type: ignore[arg-type]


def test_failure_rate_is_seeded() -> None:
    def outcomes(seed: int) -> list[bool]:
        state = SimState({}, SimProfile(), seed)
        return [state.should_fail(SimProfile(failure_rate=0.4)) for _ in range(200)]

    assert outcomes(7) == outcomes(7) != outcomes(8)
    assert 50 < sum(outcomes(7)) < 110


def test_split_text_keeps_every_character() -> None:
    assert split_text("abcdefg", 3) == ["ab", "cd", "efg"]
    assert "".join(split_text("hi", 5)) == "hi"


def test_mounted_under_a_prefix() -> None:
    app = Starlette(routes=[Mount("/simulator", app=create_simulator_app({"sim-fast": SimProfile()}))])
    with (
        UvicornThread(app) as server,
        openai.OpenAI(base_url=f"{server.url}/simulator/v1", api_key="x", max_retries=0) as sdk,
    ):
        assert [m.id for m in sdk.models.list()] == ["sim-fast"]
        reply = sdk.chat.completions.create(model="sim-fast", messages=MESSAGES)  # type: ignore[arg-type]
        assert reply.choices[0].message.content == "Simulated reply from sim-fast."
