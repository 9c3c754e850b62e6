"""One request in progress: its decision, attempts appended as they end, and its one finish."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from policies.base import Decision, DecisionRequest, Snapshot
from proxy.forwarding.base import FailureKind, Summary
from proxy.pipeline.explain import EXPLAIN_HEADER, Explanation, SkipReason, header_value, payload
from proxy.pipeline.headers import response_headers
from proxy.pipeline.kinds import DECISION_HEADER, decision_kind
from proxy.pipeline.outcome import Attempt, Outcome, Status

Clock = Callable[[], float]
"""Monotonic seconds: every duration of a request is measured on one such clock."""


@dataclass(frozen=True, slots=True)
class Decided:
    """What is known before the first attempt: who asked, the candidates and the ranking."""

    request_id: str
    decision_request: DecisionRequest
    decision: Decision
    snapshot: Snapshot
    workflow: str | None
    started_at: float
    """Wall time, stored with the records."""
    wants_json: bool = False
    tool_schemas: dict[str, dict[str, object]] | None = None
    explanation: Explanation | None = None
    """Computed only when the request asked for it (``X-Model-Manager-Explain``)."""


class Flight:
    """Attempts and the ending of one request; ``finish`` builds its Outcome once.

    Durations are taken on ``clock`` from ``started`` (the request's start). ``finish`` is
    idempotent: the first call builds the frozen Outcome and hands it to ``finished``; later
    calls return that same Outcome. A flight that is never ``end``-ed finishes CANCELLED.
    """

    def __init__(
        self, decided: Decided, *, started: float, clock: Clock, finished: Callable[[Outcome], None]
    ) -> None:
        self.decided = decided
        self.started = started
        self._clock = clock
        self._finished = finished
        self._attempts: list[Attempt] = []
        self._status = Status.CANCELLED
        self._summary: Summary | None = None
        self._ended_at: float | None = None
        self._first_chunk_at: float | None = None
        self._outcome: Outcome | None = None
        self._skipped: list[tuple[str, SkipReason]] = []

    @property
    def attempts(self) -> Sequence[Attempt]:
        return tuple(self._attempts)

    def now(self) -> float:
        return self._clock()

    def attempted(
        self,
        model: str,
        began: float,
        failure: FailureKind | None = None,
        *,
        first_chunk_at: float | None = None,
        message: str = "",
    ) -> None:
        """Append the attempt sent to ``model`` at ``began``, ending now."""
        ttft = None if first_chunk_at is None else first_chunk_at - began
        self._attempts.append(Attempt(model, failure, self._clock() - began, ttft, message))
        if first_chunk_at is not None and self._first_chunk_at is None:
            self._first_chunk_at = first_chunk_at

    def skipped(self, model: str, reason: SkipReason) -> None:
        """``model`` was passed over without an attempt, for ``reason``."""
        self._skipped.append((model, reason))

    def end(self, status: Status, summary: Summary | None = None) -> None:
        """How the request ended, now (the first ending recorded counts)."""
        if self._ended_at is None:
            self._status, self._summary, self._ended_at = status, summary, self._clock()

    def headers(self, streaming: Attempt | None = None) -> dict[str, str]:
        """The response headers as of now; ``streaming`` is the stream about to be relayed."""
        attempts = [*self._attempts, streaming] if streaming is not None else self._attempts
        model = streaming.model if streaming is not None else self._answered_by()
        headers = response_headers(self.decided.request_id, attempts, model, self._clock() - self.started)
        decision = self.decided.decision
        kind = decision_kind(decision, model)
        headers[DECISION_HEADER] = kind.value
        if self.decided.explanation is not None:
            body = payload(self.decided.explanation, kind, model, self._skipped, len(decision.ranking))
            headers[EXPLAIN_HEADER] = header_value(body)
        return headers

    def finish(self) -> Outcome:
        """The request's Outcome, built and handed on the first call only."""
        if self._outcome is None:
            self._outcome = self._build()
            self._finished(self._outcome)
        return self._outcome

    def _answered_by(self) -> str | None:
        return self._attempts[-1].model if self._status is Status.SUCCESS and self._attempts else None

    def _build(self) -> Outcome:
        decided, ended_at = self.decided, self._ended_at if self._ended_at is not None else self._clock()
        first_chunk = self._first_chunk_at
        return Outcome(
            request_id=decided.request_id,
            decision_request=decided.decision_request,
            decision=decided.decision,
            snapshot=decided.snapshot,
            workflow=decided.workflow,
            started_at=decided.started_at,
            attempts=tuple(self._attempts),
            status=self._status,
            summary=self._summary,
            latency_s=ended_at - self.started,
            ttft_s=None if first_chunk is None else first_chunk - self.started,
            wants_json=decided.wants_json,
            tool_schemas=decided.tool_schemas,
        )
