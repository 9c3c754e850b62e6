"""Mid-stream recovery: the continuation prompt, and continuation chunks spliced into the first stream.

A stream that breaks after its first chunk reached the client is continued by the next-ranked
model: it is sent the original messages, the partial answer as an assistant message, and
CONTINUE_INSTRUCTION. Its chunks are rewritten to carry the first stream's ``id``, ``model``
and ``created``, its role and usage chunks are dropped, and one final chunk carries the summed
usage (when the client asked for it) and ``x_model_manager: {resumed_from, resumed_by}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from proxy.forwarding.base import Summary, Usage
from proxy.forwarding.sse_events import DONE_DATA, event_data

CONTINUE_INSTRUCTION = (
    "Your previous message was cut off. Continue it exactly where it stopped: do not repeat "
    "anything already written, do not add a preamble, output only the rest of the answer."
)
RESUMED_FIELD = "x_model_manager"
CHARS_PER_TOKEN = 4


def resumable(summaries: Sequence[Summary]) -> bool:
    """Whether a broken answer may be continued: no tool call had started (tool-call
    arguments are never spliced; such a stream ends in an error event)."""
    return not any(summary.tool_calls for summary in summaries)


def continuation_body(body: Mapping[str, Any], partial: str) -> dict[str, Any]:
    """The request asking the next model to continue ``partial`` (the text relayed so far);
    with nothing relayed yet, the original request."""
    if not partial:
        return dict(body)
    messages = [
        *body.get("messages", ()),
        {"role": "assistant", "content": partial},
        {"role": "user", "content": CONTINUE_INSTRUCTION},
    ]
    return {**body, "messages": messages}


def partial_usage(summary: Summary) -> Usage:
    """A broken stream's usage: as reported, or (reported none) completion tokens estimated
    from the text it relayed."""
    usage = summary.usage
    if usage.completion_tokens or not summary.text:
        return Usage(usage.prompt_tokens, usage.completion_tokens)
    return Usage(usage.prompt_tokens, -(-len(summary.text) // CHARS_PER_TOKEN))


class Splice:
    """Rewrites continuation frames so the client sees the first stream's one answer."""

    def __init__(self, first: bytes) -> None:
        payload = _payload(first)
        head = payload if isinstance(payload, dict) else {}
        self._identity = {key: head[key] for key in ("id", "created", "model") if key in head}

    def frame(self, frame: bytes) -> bytes | None:
        """``frame`` as part of the first stream, or None to drop it (role-only, usage-only)."""
        payload = _payload(frame)
        if not isinstance(payload, dict):
            return frame
        payload.pop("usage", None)
        choices = [kept for choice in payload.get("choices") or () if (kept := _choice(choice))]
        if not choices:
            return None
        return _encode({**payload, **self._identity, "choices": choices})

    def final(self, resumed_from: str, resumed_by: str, usage: Usage | None) -> bytes:
        """The last chunk before ``[DONE]``: who resumed the answer, and the summed usage
        when the client asked for it."""
        payload: dict[str, Any] = {
            "object": "chat.completion.chunk",
            **self._identity,
            "choices": [],
            RESUMED_FIELD: {"resumed_from": resumed_from, "resumed_by": resumed_by},
        }
        if usage is not None:
            total = usage.prompt_tokens + usage.completion_tokens
            payload["usage"] = {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": total,
            }
        return _encode(payload)


def combined(summaries: Sequence[Summary], usages: Sequence[Usage]) -> Summary:
    """One summary for the spliced answer: texts joined, the last finish reason, usage summed."""
    summary = Summary(upstream_model=summaries[0].upstream_model if summaries else None)
    for part in summaries:
        summary.add_text(part.text)
        summary.tool_calls.extend(part.tool_calls)
        summary.finish_reason = part.finish_reason or summary.finish_reason
    summary.usage = Usage(
        sum(usage.prompt_tokens for usage in usages), sum(usage.completion_tokens for usage in usages)
    )
    return summary


def _choice(choice: Any) -> dict[str, Any] | None:
    if not isinstance(choice, dict):
        return None
    delta = {key: value for key, value in (choice.get("delta") or {}).items() if key != "role"}
    if delta.get("content") == "" and len(delta) == 1:
        delta = {}
    if not delta and not choice.get("finish_reason"):
        return None
    return {**choice, "delta": delta}


def _payload(frame: bytes) -> Any:
    data = event_data(frame)
    if data is None or data == DONE_DATA:
        return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def _encode(payload: Mapping[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"
