"""Chat completion chunks as Responses API streaming events (pure).

``StreamTranslator`` is fed the parsed ``chat.completion.chunk`` dicts of one stream and
answers with the events OpenAI would have sent, each with its ``sequence_number``:

    response.created, response.in_progress,
    per text run: output_item.added, content_part.added, output_text.delta..., output_text.done,
                  content_part.done, output_item.done
    per tool call: output_item.added, function_call_arguments.delta..., function_call_arguments.done,
                   output_item.done
    response.completed (or response.incomplete) with usage; response.failed on an error.

A text run closes when a tool call starts; tool calls close when the stream finishes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from proxy.responses_api.reply import (
    Envelope,
    as_dict,
    function_call_item,
    incomplete_details,
    item_id,
    message_item,
    status_of,
    text_part,
    to_usage,
)

Event = dict[str, Any]


@dataclass(slots=True)
class _Text:
    output_index: int
    id: str = field(default_factory=lambda: item_id("msg"))
    text: str = ""


@dataclass(slots=True)
class _Call:
    output_index: int
    call_id: str
    name: str
    id: str = field(default_factory=lambda: item_id("fc"))
    arguments: str = ""


class StreamTranslator:
    """One stream's translation state: the output so far and the next sequence number."""

    def __init__(self, envelope: Envelope) -> None:
        self._envelope = envelope
        self._sequence = 0
        self._model = ""
        self._output: list[dict[str, Any]] = []
        self._text: _Text | None = None
        self._calls: dict[int, _Call] = {}
        self._finish: str | None = None
        self._usage: object = None
        self._started = False

    def _start(self) -> list[Event]:
        """response.created and response.in_progress, once, before any other event."""
        if self._started:
            return []
        self._started = True
        snapshot = self._snapshot("in_progress")
        return [
            self._event("response.created", response=snapshot),
            self._event("response.in_progress", response=snapshot),
        ]

    def feed(self, chunk: dict[str, Any]) -> list[Event]:
        """The events for one chat.completion.chunk dict (the first also starts the response)."""
        if isinstance(chunk.get("model"), str) and not self._model:
            self._model = chunk["model"]
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        events = self._start()
        for choice in chunk.get("choices") or ():
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                events += self._choice(choice)
        return events

    def finish(self) -> list[Event]:
        """Close what is open, then response.completed (or .incomplete) with usage."""
        events = self._start() + self._close_text() + self._close_calls()
        status = status_of(self._finish)
        response = self._snapshot(status)
        response["incomplete_details"] = incomplete_details(self._finish)
        response["usage"] = to_usage(self._usage)
        return [*events, self._event(f"response.{status}", response=response)]

    def fail(self, error: object) -> list[Event]:
        """response.failed carrying the upstream's error message."""
        message = error.get("message") if isinstance(error, dict) else None
        response = self._snapshot("failed")
        response["error"] = {"code": "server_error", "message": str(message or "upstream stream failed")}
        return [*self._start(), self._event("response.failed", response=response)]

    def _choice(self, choice: dict[str, Any]) -> list[Event]:
        delta = as_dict(choice.get("delta"))
        events: list[Event] = []
        if isinstance(delta.get("content"), str) and delta["content"]:
            events += self._text_delta(delta["content"])
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                events += self._call_delta(call)
        if choice.get("finish_reason"):
            self._finish = str(choice["finish_reason"])
        return events

    def _text_delta(self, text: str) -> list[Event]:
        events = [] if self._text is not None else self._open_text()
        assert self._text is not None
        self._text.text += text
        return [
            *events,
            self._event("response.output_text.delta", **self._text_place(), delta=text, logprobs=[]),
        ]

    def _open_text(self) -> list[Event]:
        self._text = text = _Text(len(self._output))
        self._output.append(message_item(text.id, [], "in_progress"))
        return [
            self._event("response.output_item.added", output_index=text.output_index, item=self._output[-1]),
            self._event("response.content_part.added", **self._text_place(), part=text_part("")),
        ]

    def _close_text(self) -> list[Event]:
        text, self._text = self._text, None
        if text is None:
            return []
        place = {"item_id": text.id, "output_index": text.output_index, "content_index": 0}
        item = message_item(text.id, [text_part(text.text)], "completed")
        self._output[text.output_index] = item
        return [
            self._event("response.output_text.done", **place, text=text.text, logprobs=[]),
            self._event("response.content_part.done", **place, part=text_part(text.text)),
            self._event("response.output_item.done", output_index=text.output_index, item=item),
        ]

    def _call_delta(self, delta: dict[str, Any]) -> list[Event]:
        index = delta.get("index", len(self._calls))
        function = as_dict(delta.get("function"))
        events = [] if index in self._calls else self._open_call(index, delta, function)
        call = self._calls[index]
        arguments = function.get("arguments")
        if not isinstance(arguments, str) or not arguments:
            return events
        call.arguments += arguments
        where = {"item_id": call.id, "output_index": call.output_index}
        return [*events, self._event("response.function_call_arguments.delta", **where, delta=arguments)]

    def _open_call(self, index: Any, delta: dict[str, Any], function: dict[str, Any]) -> list[Event]:
        events = self._close_text()
        call_id = str(delta.get("id") or item_id("call"))
        call = _Call(len(self._output), call_id, str(function.get("name") or ""))
        self._calls[index] = call
        self._output.append(function_call_item(call.id, call.call_id, call.name, "", "in_progress"))
        return [
            *events,
            self._event("response.output_item.added", output_index=call.output_index, item=self._output[-1]),
        ]

    def _close_calls(self) -> list[Event]:
        events: list[Event] = []
        for call in self._calls.values():
            item = function_call_item(call.id, call.call_id, call.name, call.arguments, "completed")
            self._output[call.output_index] = item
            where = {"item_id": call.id, "output_index": call.output_index}
            events.append(
                self._event(
                    "response.function_call_arguments.done", **where, name=call.name, arguments=call.arguments
                )
            )
            events.append(self._event("response.output_item.done", output_index=call.output_index, item=item))
        self._calls = {}
        return events

    def _text_place(self) -> dict[str, Any]:
        assert self._text is not None
        return {"item_id": self._text.id, "output_index": self._text.output_index, "content_index": 0}

    def _snapshot(self, status: str) -> dict[str, Any]:
        return self._envelope.response(model=self._model, status=status, output=list(self._output))

    def _event(self, kind: str, **fields: Any) -> Event:
        event = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event
