"""What the outcome needs from a native Responses answer, folded into a Summary (pure).

A ``response`` object gives the text of its ``output_text`` parts, its ``function_call``
items, a finish reason (``completed`` -> stop, or ``tool_calls`` when it called a function;
``incomplete`` -> length or content_filter) and its usage (``input_tokens`` /
``output_tokens``). A stream's text deltas are kept as they come, so a stream cut before its
final event still has the text it relayed.
"""

from __future__ import annotations

from typing import Any

from proxy.forwarding.base import Summary, Usage

TERMINAL_OK = frozenset({"response.completed", "response.incomplete"})
"""Events that end a stream that answered."""
TERMINAL_FAILED = frozenset({"response.failed", "error"})
"""Events that end a stream that failed (the upstream's own failure event)."""
INCOMPLETE_FINISH = {"max_output_tokens": "length", "content_filter": "content_filter"}


def response_summary(response: Any) -> Summary:
    """The Summary of a ``response`` object (an empty one for anything else)."""
    summary = Summary()
    fold_response(summary, response)
    return summary


def fold_response(summary: Summary, response: Any) -> None:
    """Replace ``summary``'s text, calls, finish and usage with those of a final ``response``."""
    if not isinstance(response, dict):
        return
    summary.text, summary.tool_calls = "", []
    for item in response.get("output") or ():
        _add_item(summary, item)
    summary.finish_reason = _finish(response, bool(summary.tool_calls))
    summary.usage = usage_of(response.get("usage"))
    if isinstance(response.get("model"), str):
        summary.upstream_model = response["model"]


def fold_event(summary: Summary, event: Any) -> None:
    """Fold one streamed event: text deltas as they come, the final response when it ends."""
    if not isinstance(event, dict):
        return
    kind = event.get("type")
    if kind == "response.output_text.delta":
        summary.add_text(event.get("delta"))
    elif kind in TERMINAL_OK:
        fold_response(summary, event.get("response"))
    elif summary.upstream_model is None and isinstance(event.get("response"), dict):
        model = event["response"].get("model")
        summary.upstream_model = model if isinstance(model, str) else None


def usage_of(usage: Any) -> Usage:
    """Responses usage (input/output tokens) as chat usage (prompt/completion tokens)."""
    if not isinstance(usage, dict):
        return Usage()
    return Usage.from_mapping(
        {"prompt_tokens": usage.get("input_tokens"), "completion_tokens": usage.get("output_tokens")}
    )


def _add_item(summary: Summary, item: Any) -> None:
    if not isinstance(item, dict):
        return
    if item.get("type") == "message":
        for part in item.get("content") or ():
            if isinstance(part, dict) and part.get("type") == "output_text":
                summary.add_text(part.get("text"))
    elif item.get("type") == "function_call":
        summary.tool_calls.append((str(item.get("name") or ""), str(item.get("arguments") or "")))


def _finish(response: dict[str, Any], called: bool) -> str | None:
    status = response.get("status")
    if status == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        return INCOMPLETE_FINISH.get(str(reason), "length")
    if status == "completed":
        return "tool_calls" if called else "stop"
    return None
