"""The record every request ends in, built once from its attempts, handed to learning."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from policies.base import Decision, DecisionKind, DecisionRequest, Snapshot
from proxy.forwarding.base import FailureKind, Summary
from proxy.pipeline.kinds import decision_kind


class Status(StrEnum):
    SUCCESS = "success"
    FAILED = "failed"
    """Every attempted model failed."""
    STREAM_ERROR = "stream_error"
    """The stream broke after its first byte reached the client."""
    CLIENT_ERROR = "client_error"
    """The request was wrong for every model; no model is penalised."""
    CANCELLED = "cancelled"
    """The client went away (or the request ended without an answer); nothing is learned."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One call to one model. ``failure`` is None for the call that answered.

    ``latency_s`` runs from sending the call to its end (answer, failure, or stream end);
    ``ttft_s`` from sending it to its first streamed chunk.
    """

    model: str
    failure: FailureKind | None
    latency_s: float
    ttft_s: float | None = None
    message: str = ""

    def describe(self) -> dict[str, object]:
        return {"model": self.model, "error": str(self.failure), "message": self.message}


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one request went: the decision, every attempt in order, and what the answer looked like.

    ``started_at`` is wall time (stored with the records). ``latency_s`` runs from the request's
    start to its end: the end of its final attempt (for a stream, the end of the relay), or the
    moment it gave up; ``ttft_s`` from the request's start to the first chunk relayed. Both
    mean the same on every status.
    """

    request_id: str
    decision_request: DecisionRequest
    decision: Decision
    snapshot: Snapshot
    workflow: str | None
    started_at: float
    attempts: tuple[Attempt, ...] = ()
    status: Status = Status.FAILED
    summary: Summary | None = None
    latency_s: float = 0.0
    ttft_s: float | None = None
    wants_json: bool = False
    tool_schemas: dict[str, dict[str, object]] | None = None

    @property
    def agent(self) -> str:
        return self.decision_request.agent

    @property
    def model(self) -> str | None:
        """The model that answered (or, for a broken stream, the last one that streamed)."""
        if self.status is Status.SUCCESS and self.attempts:
            return self.attempts[-1].model
        if self.status is Status.STREAM_ERROR:
            streamed = [attempt.model for attempt in self.attempts if attempt.ttft_s is not None]
            return streamed[-1] if streamed else None
        return None

    @property
    def resumed_from(self) -> str | None:
        """For an answer spliced from streams: the model whose stream broke first."""
        streamed = [attempt.model for attempt in self.attempts if attempt.ttft_s is not None]
        return streamed[0] if self.status is Status.SUCCESS and len(streamed) > 1 else None

    @property
    def kind(self) -> DecisionKind:
        """How the model was chosen (proxy.pipeline.kinds)."""
        return decision_kind(self.decision, self.model)

    @property
    def upstream_s(self) -> float:
        """Time spent in upstream calls: every attempt's latency."""
        return sum(attempt.latency_s for attempt in self.attempts)

    @property
    def fallbacks(self) -> int:
        return max(len(self.attempts) - 1, 0)
