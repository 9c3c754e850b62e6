"""A scored outcome as span plans: one request span and one child per upstream attempt.

Times are wall-clock nanoseconds mapped from the request's monotonic durations: the request
began at ``started_at - decided_s``; each attempt at that plus its ``began_s``. Attributes
follow the OpenTelemetry GenAI semantic conventions (``gen_ai.*``) plus ``model_manager.*``:

request span ``chat {requested model or "auto"}``:
  gen_ai.operation.name ("chat"), gen_ai.request.model (when the client named one),
  gen_ai.response.model (the upstream's model name, else the answering deployment),
  gen_ai.usage.input_tokens / output_tokens (with an answer), gen_ai.system and
  gen_ai.provider.name (the answering deployment's litellm provider prefix, when it has one),
  error.type (the last failure kind, or the status, when the request did not succeed),
  model_manager.request_id, .agent, .workflow (when set), .chosen_model (the policy's first
  choice), .answered_by (when answered), .attempts, .decision_kind, .status,
  .propensity and .cost_usd (when known)
attempt span ``attempt {model}`` (child, in order):
  gen_ai.operation.name, gen_ai.request.model (the deployment), gen_ai.system /
  gen_ai.provider.name (when known), model_manager.attempt.index (0 first),
  model_manager.attempt.outcome ("success" or the failure kind), error.type (the failure
  kind, when failed), model_manager.attempt.latency_s, model_manager.attempt.ttft_s (streams)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from proxy.config.models import Arm
from proxy.pipeline.learning import Scored
from proxy.pipeline.outcome import Attempt, Outcome, Status

Attribute = str | int | float | bool
SUCCESS = "success"


@dataclass(frozen=True, slots=True)
class SpanPlan:
    """One span to emit: its name, wall-clock bounds (ns), attributes, and error (None: ok)."""

    name: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Attribute]
    error: str | None = None
    children: tuple[SpanPlan, ...] = field(default=())


def request_span(scored: Scored, arms: Mapping[str, Arm]) -> SpanPlan:
    """The request's span with one child per attempt."""
    outcome = scored.outcome
    began = outcome.started_at - outcome.decided_s
    error = _request_error(outcome)
    return SpanPlan(
        name=f"chat {outcome.requested_model or 'auto'}",
        start_ns=_ns(began),
        end_ns=_ns(began + outcome.latency_s),
        attributes=_request_attributes(scored, arms, error),
        error=error,
        children=tuple(
            _attempt_span(index, attempt, began, arms) for index, attempt in enumerate(outcome.attempts)
        ),
    )


def provider_of(arm: Arm | None) -> str | None:
    """The litellm provider prefix of the deployment (``openai/gpt-4o`` -> ``openai``)."""
    if arm is None:
        return None
    prefix, slash, _ = arm.litellm_model.partition("/")
    return prefix if slash and prefix else None


def _request_attributes(scored: Scored, arms: Mapping[str, Arm], error: str | None) -> dict[str, Attribute]:
    outcome = scored.outcome
    attributes: dict[str, Attribute] = {
        "gen_ai.operation.name": "chat",
        "model_manager.request_id": outcome.request_id,
        "model_manager.agent": outcome.agent,
        "model_manager.chosen_model": outcome.decision.choice,
        "model_manager.attempts": len(outcome.attempts),
        "model_manager.decision_kind": outcome.kind.value,
        "model_manager.status": outcome.status.value,
    }
    optional: dict[str, Attribute | None] = {
        "gen_ai.request.model": outcome.requested_model,
        "model_manager.workflow": outcome.workflow,
        "model_manager.answered_by": outcome.model,
        "model_manager.propensity": scored.propensity,
        "model_manager.cost_usd": scored.cost_usd,
        "error.type": error,
    }
    attributes.update({key: value for key, value in optional.items() if value is not None})
    if outcome.model is not None:
        attributes.update(_provider(arms.get(outcome.model)))
        attributes["gen_ai.response.model"] = _response_model(outcome)
    if outcome.summary is not None and outcome.status is Status.SUCCESS:
        attributes["gen_ai.usage.input_tokens"] = outcome.summary.usage.prompt_tokens
        attributes["gen_ai.usage.output_tokens"] = outcome.summary.usage.completion_tokens
    return attributes


def _attempt_span(index: int, attempt: Attempt, began: float, arms: Mapping[str, Arm]) -> SpanPlan:
    start = began + attempt.began_s
    failure = None if attempt.failure is None else attempt.failure.value
    attributes: dict[str, Attribute] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": attempt.model,
        "model_manager.attempt.index": index,
        "model_manager.attempt.outcome": failure or SUCCESS,
        "model_manager.attempt.latency_s": attempt.latency_s,
        **_provider(arms.get(attempt.model)),
    }
    if failure is not None:
        attributes["error.type"] = failure
    if attempt.ttft_s is not None:
        attributes["model_manager.attempt.ttft_s"] = attempt.ttft_s
    return SpanPlan(
        name=f"attempt {attempt.model}",
        start_ns=_ns(start),
        end_ns=_ns(start + attempt.latency_s),
        attributes=attributes,
        error=None if failure is None else attempt.message or failure,
    )


def _provider(arm: Arm | None) -> dict[str, Attribute]:
    provider = provider_of(arm)
    return {} if provider is None else {"gen_ai.system": provider, "gen_ai.provider.name": provider}


def _response_model(outcome: Outcome) -> str:
    upstream = outcome.summary.upstream_model if outcome.summary is not None else None
    return upstream or outcome.model or ""


def _request_error(outcome: Outcome) -> str | None:
    if outcome.status is Status.SUCCESS:
        return None
    failures = [attempt.failure for attempt in outcome.attempts if attempt.failure is not None]
    return failures[-1].value if failures else outcome.status.value


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)
