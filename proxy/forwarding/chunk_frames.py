"""OpenAI chat.completion.chunk frames from a provider's parsed stream chunks.

The chunks are litellm's ``ModelResponseStream`` objects (read by attribute, never imported).
Frames share one id, model and created time; the first delta carries ``role``; a usage-only
frame (``choices: []``) follows the finish when the client asked for ``include_usage``.
"""

from __future__ import annotations

from typing import Any

import orjson

from proxy.forwarding.base import Summary, Usage

_DELTA_FIELDS = ("reasoning_content", "thinking_blocks", "provider_specific_fields")


class ChunkFramer:
    """Frames one stream; ``summary`` collects what the outcome needs, usage included."""

    def __init__(self, *, model: str, created: int, wants_usage: bool) -> None:
        self._base: dict[str, Any] = {"id": "", "created": created, "model": model}
        self._wants_usage = wants_usage
        self._role_sent = False
        self.summary = Summary(upstream_model=model)
        self.finished = False

    def frames(self, chunk: Any) -> list[bytes]:
        """The frames for one parsed chunk (often none: pings, block starts, stops)."""
        if not self._base["id"]:
            self._base["id"] = getattr(chunk, "id", None) or "chatcmpl-proxy"
        self._add_usage(getattr(chunk, "usage", None))
        choices = getattr(chunk, "choices", None) or ()
        return [frame for choice in choices if (frame := self._choice_frame(choice))]

    def final(self) -> list[bytes]:
        """The usage frame, when the client asked for one."""
        if not self._wants_usage:
            return []
        usage = self.summary.usage
        totals = {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        }
        return [self._frame({"choices": [], "usage": totals})]

    def _choice_frame(self, choice: Any) -> bytes | None:
        delta = _delta(getattr(choice, "delta", None))
        finish = getattr(choice, "finish_reason", None) or None
        if delta and not self._role_sent:
            delta["role"] = "assistant"
            self._role_sent = True
        entry: dict[str, Any] = {"index": getattr(choice, "index", 0) or 0, "delta": delta}
        if finish:
            entry["finish_reason"] = finish
            self.finished = True
        if not delta and not finish:
            return None
        self.summary.add_choice(entry)
        return self._frame({"choices": [entry]})

    def _frame(self, fields: dict[str, Any]) -> bytes:
        payload = {**self._base, "object": "chat.completion.chunk", **fields}
        return b"data: " + orjson.dumps(payload, default=str) + b"\n\n"

    def _add_usage(self, usage: Any) -> None:
        """Fold a usage: each count is the latest non-zero one (a provider may report the
        prompt at the start and the completion at the end)."""
        if usage is None:
            return
        old = self.summary.usage
        prompt = getattr(usage, "prompt_tokens", 0) or old.prompt_tokens
        completion = getattr(usage, "completion_tokens", 0) or old.completion_tokens
        self.summary.usage = Usage(prompt, completion)


def _delta(delta: Any) -> dict[str, Any]:
    """The OpenAI delta fields a parsed delta carries (empty content dropped)."""
    if delta is None:
        return {}
    out: dict[str, Any] = {}
    if content := getattr(delta, "content", None):
        out["content"] = content
    if calls := getattr(delta, "tool_calls", None):
        out["tool_calls"] = [_plain(call) for call in calls]
    for name in _DELTA_FIELDS:
        if value := getattr(delta, name, None):
            out[name] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    """JSON-ready data from a pydantic model, a TypedDict or a list of them."""
    if isinstance(value, list):
        return [_plain(item) for item in value]
    dump = getattr(value, "model_dump", None)
    return dump(exclude_none=True) if callable(dump) else value
