"""The simulator's ``POST /v1/responses``: the Responses API, natively, behaving as the profile says.

The request is read through a chat-shaped view (``chat_view``) so the same planning decides the
answer (text, tool call, JSON, tokens, finish); it is sent as a ``response`` object or as the
Responses events OpenAI streams, each named by an ``event:`` line and numbered by
``sequence_number``. Latency, errors, cuts and hangs are the chat endpoint's (Behaviour).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from proxy.simulator.reply import Reply, plan_reply, split_text
from proxy.simulator.respond import Behaviour

INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def chat_view(body: Mapping[str, Any]) -> dict[str, Any]:
    """The chat body that asks for what the Responses ``body`` asks for (for planning only)."""
    view: dict[str, Any] = {"model": body.get("model"), "messages": _messages(body.get("input"))}
    tools = [_tool(tool) for tool in body.get("tools") or () if isinstance(tool, dict)]
    if any(tools):
        view["tools"] = [tool for tool in tools if tool]
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and isinstance(choice.get("name"), str):
        view["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    elif isinstance(choice, str):
        view["tool_choice"] = choice
    text = body.get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        view["response_format"] = {"type": "json_schema", "json_schema": {"schema": fmt.get("schema")}}
    elif isinstance(fmt, dict) and fmt.get("type") == "json_object":
        view["response_format"] = {"type": "json_object"}
    return view


def _messages(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    messages = []
    for item in value if isinstance(value, list) else ():
        if isinstance(item, dict) and isinstance(item.get("role"), str):
            messages.append({"role": item["role"], "content": item.get("content")})
        elif isinstance(item, dict) and item.get("type") == "function_call_output":
            messages.append({"role": "tool", "content": item.get("output")})
    return messages


def _tool(tool: Mapping[str, Any]) -> dict[str, Any] | None:
    if tool.get("type") != "function" or not isinstance(tool.get("name"), str):
        return None
    return {"type": "function", "function": {"name": tool["name"], "parameters": tool.get("parameters")}}


def response_object(reply: Reply, status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
    """A ``response`` object with ``status`` and ``output`` (usage once it is complete)."""
    done = status != "in_progress"
    reason = INCOMPLETE.get(reply.finish_reason) if done else None
    return {
        "id": f"resp_{reply.id}",
        "object": "response",
        "created_at": reply.created,
        "status": "incomplete" if reason else status,
        "error": None,
        "incomplete_details": {"reason": reason} if reason else None,
        "model": reply.model,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "text": {"format": {"type": "text"}},
        "usage": _usage(reply) if done else None,
    }


def _usage(reply: Reply) -> dict[str, Any]:
    return {
        "input_tokens": reply.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": reply.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }


def output_item(reply: Reply, status: str = "completed", text: str | None = None) -> dict[str, Any]:
    """The answer's one output item: a message with its text, or a function call."""
    if reply.tool_name is not None:
        arguments = reply.arguments if text is None else text
        return {
            "id": f"fc_{reply.id}",
            "type": "function_call",
            "status": status,
            "call_id": f"call_{reply.id}",
            "name": reply.tool_name,
            "arguments": arguments,
        }
    content = (
        [] if text is None and status == "in_progress" else [_part(reply.content if text is None else text)]
    )
    return {
        "id": f"msg_{reply.id}",
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def _part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": []}


def stream_events(reply: Reply, chunks: int) -> Iterator[dict[str, Any]]:
    """The events of a streamed answer, in OpenAI's order, without sequence numbers."""
    started = response_object(reply, "in_progress", [])
    yield {"type": "response.created", "response": started}
    yield {"type": "response.in_progress", "response": started}
    place = {"item_id": output_item(reply)["id"], "output_index": 0}
    yield {"type": "response.output_item.added", "output_index": 0, "item": output_item(reply, "in_progress")}
    if reply.tool_name is not None:
        for piece in split_text(reply.arguments, chunks):
            yield {"type": "response.function_call_arguments.delta", **place, "delta": piece}
        yield {"type": "response.function_call_arguments.done", **place, "arguments": reply.arguments}
    else:
        text = {**place, "content_index": 0}
        yield {"type": "response.content_part.added", **text, "part": _part("")}
        for piece in split_text(reply.content, chunks):
            yield {"type": "response.output_text.delta", **text, "delta": piece, "logprobs": []}
        yield {"type": "response.output_text.done", **text, "text": reply.content, "logprobs": []}
        yield {"type": "response.content_part.done", **text, "part": _part(reply.content)}
    yield {"type": "response.output_item.done", "output_index": 0, "item": output_item(reply)}
    final = response_object(reply, "completed", [output_item(reply)])
    yield {"type": f"response.{final['status']}", "response": final}


class ResponsesBehaviour(Behaviour):
    """Behaviour for ``/v1/responses``: the same profile, the Responses wire format."""

    planned: Reply

    def reply(self) -> Any:
        return plan_reply(
            self.profile, chat_view(self.body), self.state.next_id(), int(time.time()), self.state.rng
        )

    def answer_body(self) -> bytes:
        reply = self.reply()
        return orjson.dumps(response_object(reply, "completed", [output_item(reply)]))

    def stream_frames(self) -> list[bytes]:
        self.planned = self.reply()
        events = stream_events(self.planned, self.profile.chunks)
        frames = [_frame({**event, "sequence_number": n}) for n, event in enumerate(events)]
        if self.profile.malformed_json:
            frames.insert(1, b"data: {this is not JSON\n\n")
        return frames

    def error_frame(self, sent: int) -> bytes:
        """``response.failed`` for the answer ``stream_frames`` planned."""
        response = {**response_object(self.planned, "in_progress", []), "status": "failed"}
        response["error"] = {"code": "server_error", "message": "The model failed mid-stream (simulated)."}
        event = {"type": "response.failed", "sequence_number": sent, "response": response}
        return _frame(event)


def _frame(event: dict[str, Any]) -> bytes:
    """One SSE event named by its type, as OpenAI sends Responses events."""
    return b"event: " + str(event["type"]).encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"
