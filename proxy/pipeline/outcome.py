"""The record every request ends in, exactly once, handed to learning after the response."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from policies.base import Decision, DecisionRequest, Snapshot
from proxy.forwarding.base import FailureKind, Summary


class Status(StrEnum):
    SUCCESS = "success"
    FAILED = "failed"
    """Every attempted model failed."""
    STREAM_ERROR = "stream_error"
    """The stream broke after its first byte reached the client."""
    CLIENT_ERROR = "client_error"
    """The request was wrong for every model; no model is penalised."""
    CANCELLED = "cancelled"
    """The client went away; nothing is learned."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One call to one model. ``failure`` is None for the call that answered."""

    model: str
    failure: FailureKind | None
    latency_s: float
    ttft_s: float | None = None
    message: str = ""

    def describe(self) -> dict[str, object]:
        return {"model": self.model, "error": str(self.failure), "message": self.message}


@dataclass(slots=True)
class Outcome:
    """How one request went: the decision, every attempt, and what the answer looked like."""

    request_id: str
    decision_request: DecisionRequest
    decision: Decision
    snapshot: Snapshot
    workflow: str | None
    started_at: float
    attempts: list[Attempt] = field(default_factory=list)
    status: Status = Status.FAILED
    summary: Summary | None = None
    cost_usd: float | None = None
    latency_s: float = 0.0
    ttft_s: float | None = None
    wants_json: bool = False
    tool_schemas: dict[str, dict[str, object]] | None = None
    propensity: float | None = None

    @property
    def agent(self) -> str:
        return self.decision_request.agent

    @property
    def model(self) -> str | None:
        """The model that answered (or, for a broken stream, the one that started to)."""
        if self.status in (Status.SUCCESS, Status.STREAM_ERROR) and self.attempts:
            return self.attempts[-1].model
        return None

    @property
    def fallbacks(self) -> int:
        return max(len(self.attempts) - 1, 0)
