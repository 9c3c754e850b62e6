"""Logs a person can read: one access line per request, a warning per failed attempt.

At each request's finish (proxy.pipeline.flight.Flight.finish):

- INFO ``model_manager.access``: ``request id=... agent=... workflow=... model=...
  attempts=N decision=KIND status=STATUS latency_ms=... ttft_ms=...``
- WARNING ``model_manager.attempts`` per failed attempt (not for a client that went away):
  ``attempt failed model=... error=KIND reason="..."``, at most one line per (model, error
  kind) every ``every_s`` seconds; the next line of that key says how many were suppressed
  meanwhile (``suppressed=N``, and ``(N similar suppressed)`` in text).

Every record carries its fields as ``record.fields`` (and ``record.event``) for the JSON
formatter (proxy.cli.log_format). The text is rendered only if a handler emits it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from proxy.forwarding.base import FailureKind
from proxy.pipeline.outcome import Attempt, Outcome

ACCESS_LOG = logging.getLogger("model_manager.access")
ATTEMPT_LOG = logging.getLogger("model_manager.attempts")
WARN_EVERY_S = 10.0
"""At most one failed-attempt warning per (model, error kind) this often."""
MAX_KEYS = 1024
"""(model, kind) keys remembered; beyond this the memory is cleared (bounded)."""
REASON_CHARS = 160


class LogFields:
    """``key=value ...`` of a fields mapping, rendered when (and only if) the line is emitted."""

    __slots__ = ("fields",)

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self.fields = fields

    def __str__(self) -> str:
        return " ".join(f"{key}={_text(value)}" for key, value in self.fields.items() if key != "suppressed")


class AccessLog:
    """The access line and the rate-limited attempt warnings of finished requests."""

    def __init__(
        self, monotonic: Callable[[], float] = time.monotonic, *, every_s: float = WARN_EVERY_S
    ) -> None:
        self._monotonic = monotonic
        self._every_s = every_s
        self._last: dict[tuple[str, FailureKind], float] = {}
        self._suppressed: dict[tuple[str, FailureKind], int] = {}

    def finished(self, outcome: Outcome) -> None:
        """Log ``outcome``: its failed attempts (rate-limited), then its access line."""
        for attempt in outcome.attempts:
            if attempt.failure is not None and attempt.failure is not FailureKind.CANCELLED:
                self._failed(outcome, attempt, attempt.failure)
        if ACCESS_LOG.isEnabledFor(logging.INFO):
            fields = access_fields(outcome)
            ACCESS_LOG.info("request %s", LogFields(fields), extra={"event": "request", "fields": fields})

    def _failed(self, outcome: Outcome, attempt: Attempt, kind: FailureKind) -> None:
        key = (attempt.model, kind)
        now = self._monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._every_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        if last is None and len(self._last) >= MAX_KEYS:
            self._last.clear()
            self._suppressed.clear()
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        fields = {
            "id": outcome.request_id,
            "agent": outcome.agent,
            "model": attempt.model,
            "error": kind.value,
            "reason": _short(attempt.message),
            "suppressed": suppressed,
        }
        note = f" ({suppressed} similar suppressed)" if suppressed else ""
        extra = {"event": "attempt_failed", "fields": fields}
        ATTEMPT_LOG.warning("attempt failed %s%s", LogFields(fields), note, extra=extra)


def access_fields(outcome: Outcome) -> dict[str, Any]:
    """The access line's fields (durations in milliseconds, None when unknown)."""
    return {
        "id": outcome.request_id,
        "agent": outcome.agent,
        "workflow": outcome.workflow,
        "model": outcome.model,
        "attempts": len(outcome.attempts),
        "decision": outcome.kind.value,
        "status": outcome.status.value,
        "latency_ms": round(outcome.latency_s * 1000, 1),
        "ttft_ms": None if outcome.ttft_s is None else round(outcome.ttft_s * 1000, 1),
    }


def _short(message: str) -> str:
    line = " ".join(message.split())
    return line if len(line) <= REASON_CHARS else line[: REASON_CHARS - 1] + "…"


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value if value and " " not in value and '"' not in value else orjson.dumps(value).decode()
    return str(value)
