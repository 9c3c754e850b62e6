"""A chat completion answer as a Responses API ``response`` object (pure).

The message becomes one ``message`` output item (output_text and refusal parts), each tool
call a ``function_call`` item; usage is renamed (input/output/total tokens); a ``length`` or
``content_filter`` finish makes the response ``incomplete`` as OpenAI reports it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}
ECHOED = ("instructions", "max_output_tokens", "parallel_tool_calls", "temperature", "top_p", "user")


@dataclass(frozen=True, slots=True)
class Envelope:
    """What every response object of one request carries: id, time and the request's echo."""

    response_id: str
    created_at: int
    request: Mapping[str, Any]

    def response(self, *, model: str, status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
        """The ``response`` object with ``output`` and ``status`` (usage added by the caller)."""
        echoed = {key: self.request.get(key) for key in ECHOED}
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "model": model,
            "output": output,
            **echoed,
            "parallel_tool_calls": self.request.get("parallel_tool_calls", True),
            "tool_choice": self.request.get("tool_choice", "auto"),
            "tools": list(self.request.get("tools") or []),
            "text": self.request.get("text") or {"format": {"type": "text"}},
            "metadata": self.request.get("metadata") or {},
            "previous_response_id": None,
            "reasoning": None,
            "store": False,
            "truncation": self.request.get("truncation") or "disabled",
            "usage": None,
        }


def item_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def to_response(chat: Mapping[str, Any], envelope: Envelope) -> dict[str, Any]:
    """The ``response`` object for the ``chat.completion`` dict ``chat``."""
    choices = chat.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = as_dict(choice.get("message"))
    finish = choice.get("finish_reason")
    response = envelope.response(
        model=str(chat.get("model") or ""), status=status_of(finish), output=output_items(message)
    )
    response["incomplete_details"] = incomplete_details(finish)
    response["usage"] = to_usage(chat.get("usage"))
    return response


def output_items(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A message item for text (or a refusal), then one function_call item per tool call."""
    parts = []
    if isinstance(message.get("content"), str) and message["content"]:
        parts.append(text_part(message["content"]))
    if isinstance(message.get("refusal"), str) and message["refusal"]:
        parts.append({"type": "refusal", "refusal": message["refusal"]})
    items = [message_item(item_id("msg"), parts, "completed")] if parts else []
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            items.append(
                function_call_item(
                    item_id("fc"),
                    str(call.get("id") or item_id("call")),
                    str(function.get("name") or ""),
                    str(function.get("arguments") or ""),
                    "completed",
                )
            )
    return items


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(item: str, parts: list[dict[str, Any]], status: str) -> dict[str, Any]:
    return {"id": item, "type": "message", "status": status, "role": "assistant", "content": parts}


def function_call_item(item: str, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {
        "id": item,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def status_of(finish_reason: object) -> str:
    return "incomplete" if finish_reason in INCOMPLETE_REASONS else "completed"


def incomplete_details(finish_reason: object) -> dict[str, str] | None:
    reason = INCOMPLETE_REASONS.get(finish_reason) if isinstance(finish_reason, str) else None
    return {"reason": reason} if reason else None


def to_usage(usage: object) -> dict[str, Any]:
    """Chat usage renamed the Responses way (cached and reasoning token details kept)."""
    usage = usage if isinstance(usage, dict) else {}
    prompt, completion = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
    prompt_details = as_dict(usage.get("prompt_tokens_details"))
    completion_details = as_dict(usage.get("completion_tokens_details"))
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": _count(prompt_details.get("cached_tokens"))},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": _count(completion_details.get("reasoning_tokens"))},
        "total_tokens": _count(usage.get("total_tokens")) or prompt + completion,
    }


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def as_dict(value: object) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}
