"""What the pipeline learns from a successful upstream call, whichever path carried it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

MAX_TEXT_CHARS = 65_536
"""Text kept for quality assessment; the rest of a long answer is relayed, not kept."""


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @staticmethod
    def from_mapping(usage: Any) -> Usage:
        if not isinstance(usage, dict):
            return Usage()
        return Usage(_int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens")))


@dataclass(slots=True)
class Summary:
    """The parts of an answer the outcome needs (not the answer itself)."""

    text: str = ""
    finish_reason: str | None = None
    tool_calls: list[tuple[str, str]] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    upstream_model: str | None = None

    def add_text(self, text: object) -> None:
        if isinstance(text, str) and len(self.text) < MAX_TEXT_CHARS:
            self.text += text[: MAX_TEXT_CHARS - len(self.text)]

    def add_message(self, message: Any) -> None:
        """Fold an OpenAI ``message`` (or stream ``delta``) dict into this summary."""
        if not isinstance(message, dict):
            return
        self.add_text(message.get("content"))
        calls = message.get("tool_calls")
        if isinstance(calls, list):
            for call in calls:
                self._add_tool_call(call)

    def _add_tool_call(self, call: Any) -> None:
        if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
            return
        function = call["function"]
        index = call.get("index", len(self.tool_calls))
        name, args = str(function.get("name") or ""), str(function.get("arguments") or "")
        if isinstance(index, int) and index < len(self.tool_calls):
            old_name, old_args = self.tool_calls[index]
            self.tool_calls[index] = (old_name or name, old_args + args)
        else:
            self.tool_calls.append((name, args))

    def add_choice(self, choice: Any) -> None:
        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
            return
        self.add_message(choice.get("message") or choice.get("delta"))
        if choice.get("finish_reason"):
            self.finish_reason = str(choice["finish_reason"])

    def add_payload(self, payload: Any) -> None:
        """Fold a chat.completion or chat.completion.chunk dict into this summary."""
        if not isinstance(payload, dict):
            return
        for choice in payload.get("choices") or ():
            self.add_choice(choice)
        if isinstance(payload.get("usage"), dict):
            self.usage = Usage.from_mapping(payload["usage"])
        if self.upstream_model is None and isinstance(payload.get("model"), str):
            self.upstream_model = payload["model"]


@dataclass(slots=True)
class Completion:
    """A non-streaming answer: the JSON body to relay and its summary."""

    body: bytes
    summary: Summary


class ChunkStream(Protocol):
    """An open upstream stream whose first event has already arrived."""

    first: bytes
    summary: Summary

    def events(self) -> AsyncIterator[bytes]:
        """SSE frames after ``first``, ending with ``data: [DONE]``; raises UpstreamError."""
        ...

    async def aclose(self) -> None:
        """Stop reading and release the upstream connection."""
        ...


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
