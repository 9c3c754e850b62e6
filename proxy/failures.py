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
