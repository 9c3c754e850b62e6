"""Mid-stream recovery: the continuation prompt, and continuation chunks spliced into the first stream.

A stream that breaks after its first chunk reached the client is continued by the next-ranked
model: it is sent the original messages, the partial answer as an assistant message, and
CONTINUE_INSTRUCTION. Its chunks are rewritten to carry the first stream's ``id``, ``model``
and ``created``, its role (once the client has one) and usage chunks are dropped, and one final
chunk carries the summed usage (when the client asked for it) and
``x_model_manager: {resumed_from, resumed_by, attempts}``.

Tool calls are never spliced: ToolCallHold keeps a stream's frames back from its first
tool-call delta to ``[DONE]``, so a stream cut mid-arguments has sent the client no part of
its tool calls, and the next model's tool calls (made afresh) are the only ones it sees.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from proxy.forwarding.base import Summary, Usage
from proxy.forwarding.sse_events import DONE, DONE_DATA, event_data

CONTINUE_INSTRUCTION = (
    "Your previous message was cut off. Continue it exactly where it stopped: do not repeat "
    "anything already written, do not add a preamble, output only the rest of the answer."
)
RESUMED_FIELD = "x_model_manager"
CHARS_PER_TOKEN = 4


MAX_HELD_BYTES = 1 << 20
"""Tool-call frames held back beyond this are released; a break after that is not resumed."""


class ToolCallHold:
    """Holds a stream's frames back from its first tool-call delta until ``[DONE]``.

    ``passed(frame)`` gives the frames to send now. ``drop()`` forgets what is held (the
    stream broke: those tool calls never reached the client). Past ``limit`` bytes the held
    frames are released and every later frame passes at once; ``spliceable`` is then False.
    """

    def __init__(self, limit: int = MAX_HELD_BYTES) -> None:
        self._limit = limit
        self._held: list[bytes] = []
        self._size = 0
        self.spliceable = True
        """No tool-call bytes have reached the client."""

    def passes_through(self, frame: bytes) -> bool:
        """Whether ``passed(frame)`` would be just ``[frame]`` (nothing held, nothing to hold)."""
        return frame != DONE and (not self.spliceable or (not self._held and not carries_tool_call(frame)))

    def passed(self, frame: bytes) -> list[bytes]:
        if self.passes_through(frame):
            return [frame]
        if frame == DONE:
            return [*self.release(), DONE]
        self._held.append(frame)
        self._size += len(frame)
        if self._size > self._limit:
            self.spliceable = False
            return self.release()
        return []

    def release(self) -> list[bytes]:
        """The held frames, now to be sent."""
        held, self._held, self._size = self._held, [], 0
        return held

    def drop(self) -> None:
        self._held, self._size = [], 0


def carries_tool_call(frame: bytes) -> bool:
    """Whether a chunk's delta carries a tool call (a byte check first: most frames are text)."""
    if b'"tool_calls"' not in frame:
        return False
    payload = _payload(frame)
    if not isinstance(payload, dict):
        return False
    deltas = [choice.get("delta") for choice in payload.get("choices") or () if isinstance(choice, dict)]
    return any(isinstance(delta, dict) and delta.get("tool_calls") for delta in deltas)


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

    def frame(self, frame: bytes, *, keep_role: bool = False) -> bytes | None:
        """``frame`` as part of the first stream, or None to drop it (role-only, usage-only);
        ``keep_role`` when the client has not been sent a role yet."""
        payload = _payload(frame)
        if not isinstance(payload, dict):
            return frame
        payload.pop("usage", None)
        choices = [kept for choice in payload.get("choices") or () if (kept := _choice(choice, keep_role))]
        if not choices:
            return None
        return _encode({**payload, **self._identity, "choices": choices})

    def final(self, resumed_from: str, resumed_by: str, attempts: int, usage: Usage | None) -> bytes:
        """The last chunk before ``[DONE]``: who resumed the answer after how many attempts
        in all, and the summed usage when the client asked for it."""
        resumed = {"resumed_from": resumed_from, "resumed_by": resumed_by, "attempts": attempts}
        payload: dict[str, Any] = {
            "object": "chat.completion.chunk",
            **self._identity,
            "choices": [],
            RESUMED_FIELD: resumed,
        }
        if usage is not None:
            total = usage.prompt_tokens + usage.completion_tokens
            payload["usage"] = {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": total,
            }
        return _encode(payload)


def broken_part(summary: Summary) -> Summary:
    """What a broken stream gave the answer: its text, no tool call (none reached the client,
    see ToolCallHold) and no finish reason."""
    return Summary(text=summary.text, usage=summary.usage, upstream_model=summary.upstream_model)


def combined(summaries: Sequence[Summary], usages: Sequence[Usage]) -> Summary:
    """One summary for the spliced answer: texts joined, the last finish reason, usage summed."""
    summary = Summary(upstream_model=summaries[0].upstream_model if summaries else None)
    for part in summaries:
        summary.add_text(part.text)
        summary.tool_calls.extend(part.tool_calls)
        summary.finish_reason = part.finish_reason or summary.finish_reason
    summary.usage = summed(usages)
    return summary


def summed(usages: Sequence[Usage]) -> Usage:
    return Usage(sum(u.prompt_tokens for u in usages), sum(u.completion_tokens for u in usages))


def _choice(choice: Any, keep_role: bool) -> dict[str, Any] | None:
    if not isinstance(choice, dict):
        return None
    delta = {key: value for key, value in (choice.get("delta") or {}).items() if keep_role or key != "role"}
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
