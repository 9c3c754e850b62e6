"""Validation of the tracking endpoints' bodies and ids (every problem is a 400 ProxyError)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from policies.base import ALL_PROMPTS
from proxy.pipeline.request import json_object
from proxy.wire.errors import ProxyError, bad_request
from proxy.wire.names import is_valid_name, is_valid_workflow

REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,127}")
CONTEXT = re.compile(r"[a-z0-9][a-z0-9_+-]{0,63}")
MAX_LIMIT = 1000
OUTCOMES = ("success", "failure", "partial", "cancelled", "unknown")
"""What ``POST /v1/workflows/{id}/finish`` accepts as ``outcome``."""


@dataclass(frozen=True, slots=True)
class FeedbackBody:
    """``{"request_id": ..., "score": ...}`` or ``{"workflow_id": ..., "score": ...}``."""

    request_id: str | None
    workflow_id: str | None
    score: float


def score_of(value: object, *, required: bool) -> float | None:
    """A score: a finite number within [0, 1] (booleans are not numbers)."""
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad_request("'score' must be a number between 0 and 1", code="invalid_score", param="score")
    score = float(value)
    if not (math.isfinite(score) and 0.0 <= score <= 1.0):
        message = f"'score' must be between 0 and 1, got {value}"
        raise bad_request(message, code="invalid_score", param="score")
    return score


def parse_feedback(raw: bytes) -> FeedbackBody:
    """Exactly one of request_id / workflow_id, and a score; else 400."""
    body = json_object(raw)
    unknown = sorted(set(body) - {"request_id", "workflow_id", "score"})
    if unknown:
        raise bad_request(f"unknown field(s) {unknown}; expected request_id or workflow_id, and score")
    request_id, workflow_id = body.get("request_id"), body.get("workflow_id")
    if (request_id is None) == (workflow_id is None):
        raise bad_request("give exactly one of 'request_id' and 'workflow_id'", code="invalid_feedback")
    score = score_of(body.get("score"), required=True)
    assert score is not None
    if request_id is not None:
        return FeedbackBody(check_request_id(request_id), None, score)
    return FeedbackBody(None, check_workflow(workflow_id, param="workflow_id"), score)


def parse_finish(raw: bytes) -> tuple[str, float | None]:
    """``{"outcome": name, "score": optional}`` -> (outcome, score); empty body: success."""
    body = json_object(raw) if raw.strip() else {}
    unknown = sorted(set(body) - {"outcome", "score"})
    if unknown:
        raise bad_request(f"unknown field(s) {unknown}; expected outcome and score")
    outcome = body.get("outcome", "success")
    if outcome not in OUTCOMES:
        message = f"'outcome' must be one of {', '.join(OUTCOMES)}, got {str(outcome)[:40]!r}"
        raise bad_request(message, code="invalid_outcome", param="outcome")
    return outcome, score_of(body.get("score"), required=False)


def check_request_id(value: object) -> str:
    if not isinstance(value, str) or REQUEST_ID.fullmatch(value) is None:
        raise bad_request("'request_id' must be a request id (the x-request-id header)", param="request_id")
    return value


def check_workflow(value: object, *, param: str = "id") -> str:
    if not isinstance(value, str) or not is_valid_workflow(value):
        raise bad_request("not a valid workflow id (1-128 of letters, digits, _.:@/-)", param=param)
    return value


def check_agent(value: str | None) -> str | None:
    if value is not None and not is_valid_name(value):
        raise bad_request("not a valid agent name", param="agent")
    return value


def check_context(value: str | None) -> str:
    """A prompt context name (``chat``, ``code+tools``...); absent means every prompt."""
    if value is None:
        return ALL_PROMPTS
    if CONTEXT.fullmatch(value) is None:
        raise bad_request("not a valid prompt context (e.g. chat, code+tools)", param="context")
    return value


def check_limit(value: str | None, default: int) -> int:
    if value is None:
        return default
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise bad_request(f"'limit' must be an integer within 1..{MAX_LIMIT}", param="limit")
    return int(value)


def not_found(what: str) -> ProxyError:
    return ProxyError(404, "not_found", f"{what} is unknown or has expired")
