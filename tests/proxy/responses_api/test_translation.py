"""The pure translations: Responses request -> chat body, chat answer -> response, chunks -> events."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.responses_api.events import StreamTranslator
from proxy.responses_api.reply import Envelope, to_response
from proxy.responses_api.request import to_chat_body
from proxy.wire.errors import ProxyError

ENVELOPE = Envelope("resp_1", 100, {"metadata": {"k": "v"}, "instructions": "sys"})


def test_history_items_become_chat_messages() -> None:
    body = to_chat_body(
        {
            "instructions": "Be brief",
            "input": [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "look"},
                        {"type": "input_image", "image_url": "http://x/i.png"},
                    ],
                },
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "Checking."}],
                },
                {"type": "function_call", "call_id": "c1", "name": "a", "arguments": "{}"},
                {"type": "function_call", "call_id": "c2", "name": "b", "arguments": '{"x": 1}'},
                {"type": "function_call_output", "call_id": "c1", "output": "one"},
                {
                    "type": "function_call_output",
                    "call_id": "c2",
                    "output": [{"type": "input_text", "text": "two"}],
                },
            ],
        }
    )
    calls = [
        {"id": "c1", "type": "function", "function": {"name": "a", "arguments": "{}"}},
        {"id": "c2", "type": "function", "function": {"name": "b", "arguments": '{"x": 1}'}},
    ]
    assert body["messages"] == [
        {"role": "system", "content": "Be brief"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "http://x/i.png"}},
            ],
        },
        {"role": "assistant", "content": "Checking.", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "c1", "content": "one"},
        {"role": "tool", "tool_call_id": "c2", "content": "two"},
    ]


def test_fields_map_to_their_chat_names() -> None:
    body = to_chat_body(
        {
            "model": "auto",
            "input": "hi",
            "stream": True,
            "max_output_tokens": 7,
            "text": {"format": {"type": "json_object"}},
            "reasoning": {"effort": "low"},
            "metadata": {"a": "b"},
            "include": ["reasoning.encrypted_content"],
            "truncation": "disabled",
        }
    )
    assert body == {
        "model": "auto",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 7,
        "response_format": {"type": "json_object"},
        "reasoning_effort": "low",
    }


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"input": "hi", "conversation": "conv_1"}, "conversation", "unsupported_parameter"),
        ({"input": "hi", "background": True}, "background", "unsupported_parameter"),
        ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0]", "unsupported_parameter"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content[0]",
            "unsupported_parameter",
        ),
        ({"input": "hi", "tool_choice": {"type": "allowed_tools"}}, "tool_choice", "unsupported_parameter"),
        ({"input": "hi", "max_output_tokens": 0}, "max_output_tokens", "invalid_request"),
        ({"input": "hi", "text": {"format": {"type": "json_schema"}}}, "text.format", "invalid_request"),
        (
            {"input": [{"type": "function_call", "name": "a", "arguments": "{}"}]},
            "input[0].call_id",
            "invalid_request",
        ),
        ({"input": []}, "input", "invalid_request"),
    ],
)
def test_what_cannot_be_translated_is_a_400_naming_the_field(
    body: dict[str, Any], param: str, code: str
) -> None:
    with pytest.raises(ProxyError) as raised:
        to_chat_body(body)
    assert (raised.value.status, raised.value.param, raised.value.code) == (400, param, code)


def test_a_truncated_answer_is_incomplete_with_renamed_usage() -> None:
    chat = {
        "model": "m1",
        "choices": [
            {"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "Half"}}
        ],
        "usage": {
            "prompt_tokens": 5,
            "completion_tokens": 3,
            "total_tokens": 8,
            "prompt_tokens_details": {"cached_tokens": 2},
            "completion_tokens_details": {"reasoning_tokens": 1},
        },
    }
    response = to_response(chat, ENVELOPE)
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["output"][0]["content"][0]["text"] == "Half"
    assert response["usage"] == {
        "input_tokens": 5,
        "input_tokens_details": {"cached_tokens": 2},
        "output_tokens": 3,
        "output_tokens_details": {"reasoning_tokens": 1},
        "total_tokens": 8,
    }
    assert (response["metadata"], response["instructions"], response["id"]) == ({"k": "v"}, "sys", "resp_1")


def test_a_refusal_is_a_refusal_part() -> None:
    chat = {"choices": [{"message": {"role": "assistant", "content": None, "refusal": "No."}}]}
    [item] = to_response(chat, ENVELOPE)["output"]
    assert item["content"] == [{"type": "refusal", "refusal": "No."}]


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"model": "m1", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def test_text_then_two_tool_calls_stream_as_separate_items() -> None:
    translator = StreamTranslator(ENVELOPE)
    events = translator.feed(chunk({"role": "assistant", "content": "Let me"}))
    events += translator.feed(
        chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "a", "arguments": ""}}]})
    )
    events += translator.feed(
        chunk({"tool_calls": [{"index": 1, "id": "c2", "function": {"name": "b", "arguments": "{}"}}]})
    )
    events += translator.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"q": 1}'}}]}))
    events += translator.feed(chunk({}, "tool_calls"))
    events += translator.feed(
        {"model": "m1", "choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 6}}
    )
    events += translator.finish()
    assert [(e["type"], e.get("output_index")) for e in events] == [
        ("response.created", None),
        ("response.in_progress", None),
        ("response.output_item.added", 0),
        ("response.content_part.added", 0),
        ("response.output_text.delta", 0),
        ("response.output_text.done", 0),
        ("response.content_part.done", 0),
        ("response.output_item.done", 0),
        ("response.output_item.added", 1),
        ("response.output_item.added", 2),
        ("response.function_call_arguments.delta", 2),
        ("response.function_call_arguments.delta", 1),
        ("response.function_call_arguments.done", 1),
        ("response.output_item.done", 1),
        ("response.function_call_arguments.done", 2),
        ("response.output_item.done", 2),
        ("response.completed", None),
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    final = events[-1]["response"]
    assert [item["type"] for item in final["output"]] == ["message", "function_call", "function_call"]
    assert [item.get("arguments") for item in final["output"][1:]] == ['{"q": 1}', "{}"]
    assert final["usage"]["total_tokens"] == 10 and final["model"] == "m1"


def test_a_failure_before_any_chunk_still_starts_the_response() -> None:
    events = StreamTranslator(ENVELOPE).fail({"message": "cut"})
    assert [e["type"] for e in events] == ["response.created", "response.in_progress", "response.failed"]
    assert events[-1]["response"]["error"] == {"code": "server_error", "message": "cut"}


@pytest.mark.parametrize(
    "item",
    [
        {"type": ["message"], "role": "user", "content": "hi"},
        {"role": ["user"], "content": "hi"},
        {"role": "user", "content": [{"type": {"t": 1}, "text": "hi"}]},
    ],
)
def test_non_string_types_and_roles_are_a_400_not_a_crash(item: dict[str, object]) -> None:
    """Found by fuzzing: an unhashable ``type`` or ``role`` raised TypeError (a 500)."""
    with pytest.raises(ProxyError) as caught:
        to_chat_body({"input": [item]})
    assert caught.value.status == 400
