"""Structured answers of the simulator: response_format JSON, tool calls, and seeded faults.

Driven by the official openai SDK's structured-output helpers (``chat.completions.parse``
with a Pydantic model, ``pydantic_function_tool``, ``chat.completions.stream``) over a real
uvicorn; schemas are checked with the ``jsonschema`` library.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

import jsonschema
import openai
import pytest
from pydantic import BaseModel, Field
from support.servers import FakeUpstream

from proxy.config.reader import ConfigError
from proxy.config.settings import parse_config
from proxy.simulator.instance import minimal_instance
from proxy.simulator.profile import SimProfile
from proxy.simulator.reply import plan_reply


class Unit(StrEnum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Reading(BaseModel):
    hour: int = Field(ge=0, le=23)
    temperature: float = Field(gt=-100, lt=60)


class Forecast(BaseModel):
    """A nested model: enum, optional, list of objects, bounded numbers and strings."""

    city: str = Field(min_length=2)
    unit: Unit
    readings: list[Reading] = Field(min_length=2)
    note: str | None
    confidence: float = Field(ge=0.5, le=1.0)


class GetWeather(BaseModel):
    city: str
    unit: Unit
    days: int = Field(ge=1, le=7)


def weather_tool() -> dict[str, Any]:
    """The GetWeather tool as the SDK sends it (strict function schema)."""
    tool: dict[str, Any] = dict(openai.pydantic_function_tool(GetWeather, name="get_weather"))
    return tool


SEARCH_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "search_docs",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}, "limit": {"type": "integer", "minimum": 5}},
            "required": ["query", "limit"],
        },
    },
}


@pytest.fixture
def client(fake_upstream: FakeUpstream) -> Iterator[openai.OpenAI]:
    """A sync openai client on the simulator, without SDK retries."""
    with openai.OpenAI(base_url=fake_upstream.url, api_key="x", max_retries=0) as sdk:
        yield sdk


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def parameters(tool: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = tool["function"]["parameters"]
    return schema


# --- schema instances ----------------------------------------------------------------------------

SCHEMAS: list[Any] = [
    Forecast.model_json_schema(),
    GetWeather.model_json_schema(),
    {
        "type": "object",
        "properties": {"a": {"type": ["null", "integer"], "exclusiveMinimum": 3}},
        "required": ["a"],
    },
    {"type": "array", "items": {"type": "string", "format": "email"}, "minItems": 3, "maxItems": 3},
    {
        "type": "object",
        "allOf": [{"properties": {"x": {"const": 7}}, "required": ["x"]}, {"required": ["y"]}],
    },
    {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.2},
    {"type": "string", "maxLength": 3},
    {"enum": [None, "b"]},
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=range(len(SCHEMAS)))
def test_minimal_instances_satisfy_their_schema(schema: Any) -> None:
    jsonschema.validate(minimal_instance(schema), schema)


def test_minimal_instance_fills_required_nested_properties() -> None:
    forecast = Forecast.model_validate(minimal_instance(Forecast.model_json_schema()))
    assert len(forecast.readings) == 2 and forecast.unit is Unit.CELSIUS
    assert forecast.note is not None  # an Optional is filled with its non-null branch


# --- response_format ------------------------------------------------------------------------------


def test_sdk_parse_returns_the_pydantic_model(client: openai.OpenAI) -> None:
    completion = client.chat.completions.parse(
        model="m1", messages=user("Forecast for Paris"), response_format=Forecast
    )
    message = completion.choices[0].message
    assert isinstance(message.parsed, Forecast)
    jsonschema.validate(json.loads(message.content or ""), Forecast.model_json_schema())
    assert completion.choices[0].finish_reason == "stop"


def test_sdk_stream_helper_parses_streamed_json(client: openai.OpenAI, fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_profile("m1", chunks=6)
    with client.chat.completions.stream(
        model="m1", messages=user("Forecast"), response_format=Forecast
    ) as stream:
        pieces = [e.delta for e in stream if e.type == "content.delta" and e.delta]
        final = stream.get_final_completion()
    assert len(pieces) == 6
    assert isinstance(final.choices[0].message.parsed, Forecast)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_json_object_mode_answers_a_json_object(client: openai.OpenAI, stream: bool) -> None:
    text = ask_text(client, "m1", stream, response_format={"type": "json_object"})
    assert json.loads(text) == {"reply": "Simulated reply from m1."}


def test_explicit_content_wins_over_response_format(
    client: openai.OpenAI, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.set_profile("m1", content="not json at all")
    assert ask_text(client, "m1", False, response_format={"type": "json_object"}) == "not json at all"


def ask_text(client: openai.OpenAI, model: str, stream: bool, **kwargs: Any) -> str:
    """The answer's text, from one completion or the concatenated stream deltas."""
    if not stream:
        reply = client.chat.completions.create(model=model, messages=user("hi"), **kwargs)
        return reply.choices[0].message.content or ""
    chunks = client.chat.completions.create(model=model, messages=user("hi"), stream=True, **kwargs)
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# --- tool calls -----------------------------------------------------------------------------------


def test_sdk_parse_with_a_pydantic_tool_names_and_parses_the_call(client: openai.OpenAI) -> None:
    completion = client.chat.completions.parse(
        model="m1",
        messages=user("What's the weather in Paris? Use the get_weather tool."),
        tools=[openai.pydantic_function_tool(GetWeather, name="get_weather")],
    )
    choice = completion.choices[0]
    (call,) = choice.message.tool_calls or []
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert isinstance(call.function.parsed_arguments, GetWeather)


def test_streamed_tool_call_is_chunked_like_openai(
    client: openai.OpenAI, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.set_profile("m1", chunks=5)
    stream = client.chat.completions.create(
        model="m1", messages=user("look it up"), tools=[SEARCH_TOOL], tool_choice="required", stream=True
    )
    chunks = [c for c in stream if c.choices]
    deltas = [tc for c in chunks for tc in c.choices[0].delta.tool_calls or []]
    first, rest = deltas[0], deltas[1:]
    assert first.function is not None and (first.function.name, first.function.arguments) == (
        "search_docs",
        "",
    )
    assert first.type == "function" and (first.id or "").startswith("call_")
    assert len(rest) == 5 and all(d.id is None and d.function and d.function.name is None for d in rest)
    arguments = "".join(d.function.arguments or "" for d in rest if d.function)
    jsonschema.validate(json.loads(arguments), parameters(SEARCH_TOOL))
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


PAST_CALL = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
AUTO_CASES = [
    pytest.param(user("Please search_docs for 'redis'"), {}, "search_docs", id="name-mentioned"),
    pytest.param(user("search docs about streams"), {}, "search_docs", id="snake-case-as-words"),
    pytest.param(user("Use a tool to find out"), {}, "get_weather", id="use-a-tool"),
    pytest.param(user("Weather? Or search_docs? get_weather first"), {}, "search_docs", id="first-mentioned"),
    pytest.param(user("Tell me a joke"), {}, None, id="not-asked"),
    pytest.param(user("call the get_weather tool"), {"tool_choice": "none"}, None, id="choice-none"),
    pytest.param(user("hi"), {"tool_choice": "required"}, "get_weather", id="required"),
    pytest.param(
        user("hi"),
        {"tool_choice": {"type": "function", "function": {"name": "search_docs"}}},
        "search_docs",
        id="named",
    ),
    pytest.param(
        [
            *user("Use the get_weather tool"),
            {"role": "assistant", "tool_calls": [PAST_CALL]},
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        ],
        {},
        None,
        id="after-tool-result",
    ),
]


@pytest.mark.parametrize(("messages", "extra", "expected"), AUTO_CASES)
def test_which_tool_is_called(
    client: openai.OpenAI, messages: list[Any], extra: dict[str, Any], expected: str | None
) -> None:
    tools = [weather_tool(), SEARCH_TOOL]
    reply = client.chat.completions.create(model="m1", messages=messages, tools=tools, **extra)
    choice = reply.choices[0]
    calls = choice.message.tool_calls or []
    assert [c.function.name for c in calls] == ([] if expected is None else [expected])  # type: ignore[union-attr]
    assert choice.finish_reason == ("stop" if expected is None else "tool_calls")
    for call in calls:
        schema = parameters(tools[0] if expected == "get_weather" else SEARCH_TOOL)
        jsonschema.validate(json.loads(call.function.arguments), schema)  # type: ignore[union-attr]


# --- faults ---------------------------------------------------------------------------------------

FORECAST_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "forecast", "schema": Forecast.model_json_schema()},
}


def breaks_schema(text: str, schema: dict[str, Any]) -> bool:
    try:
        jsonschema.validate(json.loads(text), schema)
    except (ValueError, jsonschema.ValidationError):
        return True
    return False


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_bad_json_rate_one_breaks_every_answer(
    client: openai.OpenAI, fake_upstream: FakeUpstream, stream: bool
) -> None:
    fake_upstream.set_profile("bad", bad_json_rate=1.0)
    schema = Forecast.model_json_schema()
    texts = [ask_text(client, "bad", stream, response_format=FORECAST_FORMAT) for _ in range(12)]
    assert all(breaks_schema(t, schema) for t in texts)
    unparsable = [t for t in texts if breaks_schema(t, {})]
    assert 0 < len(unparsable) < len(texts)  # truncated or not JSON, and some off-schema JSON
    objects = [ask_text(client, "bad", stream, response_format={"type": "json_object"}) for _ in range(6)]
    assert all(breaks_schema(t, {}) for t in objects)  # without a schema, never valid JSON


def test_bad_tool_call_rate_one_breaks_every_call(client: openai.OpenAI, fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_profile("bad", bad_tool_call_rate=1.0)
    schema = parameters(SEARCH_TOOL)
    calls = []
    for _ in range(12):
        reply = client.chat.completions.create(
            model="bad", messages=user("search_docs please"), tools=[SEARCH_TOOL]
        )
        assert reply.choices[0].finish_reason == "tool_calls"
        calls.append(reply.choices[0].message.tool_calls[0].function.arguments)  # type: ignore[index, union-attr]
    assert all(breaks_schema(a, schema) for a in calls)
    assert 0 < sum(breaks_schema(a, {}) for a in calls) < len(calls)  # truncated, or missing fields


def test_healthy_profiles_never_break(client: openai.OpenAI) -> None:
    schema = Forecast.model_json_schema()
    assert not any(
        breaks_schema(ask_text(client, "m1", False, response_format=FORECAST_FORMAT), schema)
        for _ in range(5)
    )


def faulty_answers(seed: int, rate: float) -> list[str]:
    """200 planned json_schema answers of a profile with ``bad_json_rate`` ``rate``."""
    rng, profile = random.Random(seed), SimProfile(bad_json_rate=rate)
    body = {"model": "m", "response_format": FORECAST_FORMAT}
    return [plan_reply(profile, body, "id", 0, rng).content for _ in range(200)]


def test_faults_are_seeded_and_follow_the_rate() -> None:
    assert faulty_answers(3, 0.3) == faulty_answers(3, 0.3) != faulty_answers(4, 0.3)
    schema = Forecast.model_json_schema()
    bad = sum(breaks_schema(t, schema) for t in faulty_answers(3, 0.3))
    assert 35 < bad < 85


def test_fault_rates_are_validated(fake_upstream: FakeUpstream) -> None:
    for fields in (
        {"bad_json_rate": 1.5},
        {"bad_tool_call_rate": -0.1},
        {"bad_json_rate": "0.1"},
        {"bad_tool_call_rate": True},
        {"failure_rate": 2},
    ):
        response = fake_upstream.client.put("/_sim/profiles/m1", json=fields)
        assert response.status_code == 422, fields
        assert next(iter(fields)) in response.json()["error"]
    assert fake_upstream.set_profile("m1", bad_json_rate=0.25)["bad_json_rate"] == 0.25


def test_config_rejects_a_bad_simulator_profile() -> None:
    entry = {"model_name": "sim", "litellm_params": {"model": "openai/sim", "api_key": "x"}}
    with pytest.raises(ConfigError, match=r"simulator\.models\.sim\.bad_json_rate: .*within \[0, 1\]"):
        parse_config({"model_list": [entry], "simulator": {"models": {"sim": {"bad_json_rate": 3}}}})
    unknown = r"simulator\.models\.sim\.bad_json: unknown key \(allowed here: bad_json_rate, "
    with pytest.raises(ConfigError, match=unknown):
        parse_config({"model_list": [entry], "simulator": {"models": {"sim": {"bad_json": 0.1}}}})
