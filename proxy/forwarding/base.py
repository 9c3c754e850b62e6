"""The forwarding seam: the Upstream protocol, what a call returns, and how it can fail.

Every path (direct relay, translated, litellm) returns a Completion or a ChunkStream, or
raises UpstreamError with a FailureKind; nothing above this package sees a transport's or
provider's own exception types.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from proxy.config.settings import Arm


class FailureKind(StrEnum):
    """Why an attempt failed, by who can fix it. Every kind but CLIENT and CANCELLED falls
    back to the next model; CONFIG, AUTH and NOT_FOUND (the deployment's own configuration
    or credentials: only its operator can fix them) also rest the model.

    The rule for a 4xx: 401/403 are AUTH and 404 NOT_FOUND (the deployment's key, access
    or model name); 400 or 422 naming the model or the provider (unknown, not provided, does
    not exist) is CONFIG; 408 is TIMEOUT, 413 CONTEXT_WINDOW (the request is too large for
    that model: one with a larger window may take it), 429 RATE_LIMITED; any other 4xx (a
    400 about the request's own fields or parameters, 409, 422) is CLIENT: every model would
    reject it, so it is returned at once.
    """

    TIMEOUT = "timeout"
    CONNECTION = "connection_error"
    SERVER = "server_error"
    RATE_LIMITED = "rate_limited"
    CONTEXT_WINDOW = "context_window_exceeded"
    AUTH = "auth_error"
    CONFIG = "config_error"
    NOT_FOUND = "not_found"
    BAD_RESPONSE = "bad_response"
    CONTENT_FILTER = "content_filter"
    STREAM_CUT = "stream_cut"
    CLIENT = "client_error"
    CANCELLED = "cancelled"

    @property
    def retryable(self) -> bool:
        """Another model may succeed where this one failed."""
        return self not in (FailureKind.CLIENT, FailureKind.CANCELLED)

    @property
    def model_at_fault(self) -> bool:
        """The failure teaches the policy a 0 for that model."""
        return self.retryable

    @property
    def rests_model(self) -> bool:
        """The deployment is misconfigured: leave it out of routing for a while."""
        return self in (FailureKind.CONFIG, FailureKind.AUTH, FailureKind.NOT_FOUND)


class UpstreamError(Exception):
    """One failed attempt. ``message`` never contains credentials."""

    def __init__(
        self,
        kind: FailureKind,
        message: str,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after_s = retry_after_s


_STATUS_KINDS = {
    401: FailureKind.AUTH,
    403: FailureKind.AUTH,
    404: FailureKind.NOT_FOUND,
    408: FailureKind.TIMEOUT,
    413: FailureKind.CONTEXT_WINDOW,
    429: FailureKind.RATE_LIMITED,
}
_CONTEXT_HINTS = ("context_length_exceeded", "maximum context length", "context window")
_FILTER_HINTS = ("content_filter", "content_policy_violation")
CONFIG_HINTS = (
    "llm provider not provided",
    "model_not_found",
    "invalid model",
    "unknown model",
    "model not found",
    "does not exist",
    "unknown provider",
)
"""Words of a 400/422 that blame the deployment (its model or provider), not the request."""


def kind_for_status(status: int, text: str = "") -> FailureKind:
    """The FailureKind of an HTTP error status, refined by the error body's code/message
    (the rule is FailureKind's docstring)."""
    lowered = text.lower()
    if status == 400 and any(hint in lowered for hint in _CONTEXT_HINTS):
        return FailureKind.CONTEXT_WINDOW
    if status == 400 and any(hint in lowered for hint in _FILTER_HINTS):
        return FailureKind.CONTENT_FILTER
    if status in (400, 422) and any(hint in lowered for hint in CONFIG_HINTS):
        return FailureKind.CONFIG
    if status in _STATUS_KINDS:
        return _STATUS_KINDS[status]
    if status >= 500:
        return FailureKind.SERVER
    return FailureKind.CLIENT


REASON_WORDS = 12
_TAG = re.compile(r"<(script|style)[^>]*>.*?</\1>|<[^>]*>", re.S | re.I)


def error_reason(status: int | None, text: str) -> str:
    """A short reason from an upstream's error body: a JSON body as is (cut to 500 chars);
    anything else (an HTML page, plain text) as the status and its first words, no tags."""
    stripped = text.strip()
    if stripped.startswith(("{", "[")):
        return stripped[:500]
    words = _TAG.sub(" ", stripped).replace("&nbsp;", " ").split()
    head = " ".join(words[:REASON_WORDS]) + (" ..." if len(words) > REASON_WORDS else "")
    prefix = f"HTTP {status}" if status is not None else "upstream error"
    return f"{prefix}: {head}" if head else prefix


_HTML = re.compile(r"<(!doctype|html|head|body|title|h1|h2|p|div|center|pre)\b", re.I)


def without_html(message: str, status: int | None = None) -> str:
    """``message`` unchanged, unless it carries markup: then its status and first words."""
    return error_reason(status, message) if _HTML.search(message) else message


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


def wants_usage(body: Mapping[str, Any]) -> bool:
    """Whether the client asked for the usage chunk (``stream_options.include_usage``)."""
    return bool((body.get("stream_options") or {}).get("include_usage"))


def with_usage(body: Mapping[str, Any]) -> dict[str, Any]:
    """The client's ``stream_options`` with ``include_usage`` on (the proxy always reads usage)."""
    return {**(body.get("stream_options") or {}), "include_usage": True}


def retry_after_s(value: object) -> float | None:
    """Seconds from a ``Retry-After`` header value (never negative); None when absent or unparsable."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


async def guarded(
    events: AsyncIterator[bytes],
    failure: Callable[[Exception], UpstreamError],
    tail: Callable[[], Iterable[bytes]] = tuple,
) -> AsyncIterator[bytes]:
    """``events`` relayed, any exception but UpstreamError raised as ``failure(exc)``; then the
    frames of ``tail()``, called once ``events`` ended (it may raise UpstreamError instead)."""
    try:
        async for event in events:
            yield event
    except UpstreamError:
        raise
    except Exception as exc:
        raise failure(exc) from exc
    for frame in tail():
        yield frame


class Upstream(Protocol):
    """What the pipeline calls: one upstream call, JSON or streamed."""

    async def complete(self, arm: Arm, body: dict[str, Any], timeout: float) -> Completion: ...

    async def open_stream(
        self, arm: Arm, body: dict[str, Any], *, first_chunk_timeout: float, timeout: float
    ) -> ChunkStream: ...


@runtime_checkable
class ResponsesUpstream(Protocol):
    """What ``POST /v1/responses`` calls for a deployment that speaks the Responses API
    (``speaks_responses``): the client's body relayed, its answer in the Responses format."""

    def speaks_responses(self, arm: Arm) -> bool: ...

    async def respond(self, arm: Arm, body: dict[str, Any], timeout: float) -> Completion:
        """The upstream's ``response`` object as it came; raises UpstreamError."""
        ...

    async def open_response_stream(
        self, arm: Arm, body: dict[str, Any], *, first_chunk_timeout: float, timeout: float
    ) -> ChunkStream:
        """Responses events as they came; a break ends in a ``response.failed`` event, then
        UpstreamError."""
        ...


class Embedder(Protocol):
    """What the embeddings relay calls: one upstream embeddings request."""

    async def embed(self, arm: Arm, body: dict[str, Any], timeout: float) -> bytes:
        """The upstream's JSON answer (an OpenAI ``list`` of embeddings); raises UpstreamError."""
        ...
