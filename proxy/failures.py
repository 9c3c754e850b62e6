"""What can go wrong with one upstream attempt, and whether another model could do better."""

from __future__ import annotations

from enum import StrEnum


class FailureKind(StrEnum):
    """Why an attempt failed. Every kind but CLIENT and CANCELLED falls back to the next model."""

    TIMEOUT = "timeout"
    CONNECTION = "connection_error"
    SERVER = "server_error"
    RATE_LIMITED = "rate_limited"
    CONTEXT_WINDOW = "context_window_exceeded"
    AUTH = "auth_error"
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


def kind_for_status(status: int, text: str = "") -> FailureKind:
    """The FailureKind of an HTTP error status, refined by the error body's code/message."""
    lowered = text.lower()
    if status == 400 and any(hint in lowered for hint in _CONTEXT_HINTS):
        return FailureKind.CONTEXT_WINDOW
    if status == 400 and any(hint in lowered for hint in _FILTER_HINTS):
        return FailureKind.CONTENT_FILTER
    if status in _STATUS_KINDS:
        return _STATUS_KINDS[status]
    if status >= 500:
        return FailureKind.SERVER
    return FailureKind.CLIENT
