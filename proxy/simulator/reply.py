"""The JSON bodies a simulated model sends: completions, stream chunks, OpenAI-shaped errors."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from proxy.simulator.profile import SimProfile
from proxy.simulator.structured import ToolCall, json_content, tool_call

CONTEXT_WINDOW_MESSAGE = (
    "This model's maximum context length is 4096 tokens. However, your messages resulted in "
    "5000 tokens. Please reduce the length of the messages."
)

_ERRORS: Mapping[int, tuple[str, str, str | None]] = {
    400: ("Invalid request (simulated).", "invalid_request_error", None),
    401: ("Incorrect API key provided (simulated).", "invalid_request_error", "invalid_api_key"),
    403: ("Forbidden (simulated).", "invalid_request_error", None),
    404: ("The model does not exist (simulated).", "invalid_request_error", "model_not_found"),
    429: ("Rate limit reached (simulated).", "requests", "rate_limit_exceeded"),
    503: ("The server is overloaded or not ready yet (simulated).", "server_error", None),
}
_SERVER_ERROR = (
    "The server had an error processing your request (simulated).",
    "server_error",
    None,
)


@dataclass(frozen=True, slots=True)
class Reply:
    """Everything needed to render one successful answer, stream or not."""

    id: str
    created: int
    model: str
    content: str
    tool_name: str | None
    arguments: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    n: int
    include_usage: bool

    @property
    def usage(self) -> dict[str, int]:
        """OpenAI usage block."""
        total = self.prompt_tokens + self.completion_tokens
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": total,
        }


def _estimate_prompt_tokens(body: Mapping[str, Any]) -> int:
    """Rough token count: characters of the messages / 4, at least 1."""
    messages = body.get("messages") or []
    chars = sum(len(str(m.get("content") or "")) for m in messages if isinstance(m, dict))
    return max(1, chars // 4)


def plan_reply(
    profile: SimProfile, body: Mapping[str, Any], reply_id: str, now: int, rng: random.Random
) -> Reply:
    """The answer ``profile`` gives to the request ``body`` (``rng`` draws the faults)."""
    model = str(body.get("model", ""))
    call = tool_call(profile, body, rng)
    content = _content(profile, body, rng) if call is None else ""
    stream_options = body.get("stream_options") or {}
    return Reply(
        id=reply_id,
        created=now,
        model=model,
        content=content,
        tool_name=None if call is None else call.name,
        arguments="" if call is None else call.arguments,
        finish_reason="tool_calls" if call is not None else profile.finish_reason,
        prompt_tokens=profile.prompt_tokens or _estimate_prompt_tokens(body),
        completion_tokens=profile.completion_tokens or _count_words(content, call),
        n=int(body.get("n") or 1),
        include_usage=bool(stream_options.get("include_usage")),
    )


def _content(profile: SimProfile, body: Mapping[str, Any], rng: random.Random) -> str:
    """The text answer: the profile's, the JSON asked for, or a reply naming the model."""
    if profile.content is not None:
        return profile.content
    json_text = json_content(profile, body, rng)
    return json_text if json_text is not None else f"Simulated reply from {body.get('model', '')}."


def _count_words(content: str, call: ToolCall | None) -> int:
    """Completion tokens when the profile sets none: words of the answer, at least 1."""
    return max(1, len((content if call is None else call.arguments).split()))


def _tool_calls(reply: Reply, arguments: str, *, first: bool) -> list[dict[str, Any]]:
    """The tool_calls list of a message (first=True) or of a continuation delta."""
    call: dict[str, Any] = {"index": 0, "function": {"arguments": arguments}}
    if first:
        call.update(id=f"call_{reply.id}", type="function")
        call["function"]["name"] = reply.tool_name
    return [call]


def _message(reply: Reply) -> dict[str, Any]:
    """The assistant message of a non-streamed choice."""
    if reply.tool_name is None:
        return {"role": "assistant", "content": reply.content}
    calls = _tool_calls(reply, reply.arguments, first=True)
    return {"role": "assistant", "content": None, "tool_calls": calls}


def completion_body(reply: Reply) -> dict[str, Any]:
    """A ``chat.completion`` object."""
    choice = {"message": _message(reply), "logprobs": None, "finish_reason": reply.finish_reason}
    return {
        "id": reply.id,
        "object": "chat.completion",
        "created": reply.created,
        "model": reply.model,
        "choices": [{"index": i, **choice} for i in range(reply.n)],
        "usage": reply.usage,
    }


def split_text(text: str, parts: int) -> list[str]:
    """``text`` cut into exactly ``parts`` (>= 1) consecutive pieces."""
    parts = max(1, parts)
    size = len(text)
    return [text[i * size // parts : (i + 1) * size // parts] for i in range(parts)]


def _deltas(reply: Reply, chunks: int) -> Iterator[tuple[dict[str, Any], str | None]]:
    """(delta, finish_reason) of every chunk of a choice, role first, finish last."""
    yield {"role": "assistant", "content": ""}, None
    if reply.tool_name is None:
        for piece in split_text(reply.content, chunks):
            yield {"content": piece}, None
    else:
        yield {"tool_calls": _tool_calls(reply, "", first=True)}, None
        for piece in split_text(reply.arguments, chunks):
            yield {"tool_calls": _tool_calls(reply, piece, first=False)}, None
    yield {}, reply.finish_reason


def _chunk(reply: Reply, choices: list[dict[str, Any]]) -> dict[str, Any]:
    """A ``chat.completion.chunk`` object with the given choices."""
    chunk: dict[str, Any] = {
        "id": reply.id,
        "object": "chat.completion.chunk",
        "created": reply.created,
        "model": reply.model,
        "choices": choices,
    }
    if reply.include_usage:
        chunk["usage"] = None
    return chunk


def stream_chunks(reply: Reply, chunks: int) -> Iterator[dict[str, Any]]:
    """Every chunk of a streamed answer, the usage chunk last when asked for."""
    for delta, finish in _deltas(reply, chunks):
        choice = {"delta": delta, "logprobs": None, "finish_reason": finish}
        yield _chunk(reply, [{"index": i, **choice} for i in range(reply.n)])
    if reply.include_usage:
        yield {**_chunk(reply, []), "usage": reply.usage}


def error_body(status: int, *, context_window: bool = False) -> dict[str, Any]:
    """OpenAI-shaped error body for ``status`` (or OpenAI's context-length error)."""
    if context_window:
        error = {
            "message": CONTEXT_WINDOW_MESSAGE,
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        }
        return {"error": error}
    message, kind, code = _ERRORS.get(status, _SERVER_ERROR)
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
