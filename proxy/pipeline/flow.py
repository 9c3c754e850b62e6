"""handle_chat: the request flow, top to bottom.

candidates -> one store read -> policy ranking -> one attempt loop (JSON or stream, fallback on
retryable failures) -> relay -> finish: the frozen Outcome, built once, to the learner.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

from starlette.responses import Response

from policies.base import Decision, DecisionRequest, Policy, Snapshot
from policies.features import extract_context
from proxy.config.settings import Arm
from proxy.forwarding.base import ChunkStream, Completion, FailureKind, UpstreamError, wants_usage
from proxy.pipeline.candidates import candidates_for
from proxy.pipeline.cooldowns import CONFIG_REST_S
from proxy.pipeline.explain import Explanation, SkipReason, explain
from proxy.pipeline.flight import Decided, Flight
from proxy.pipeline.headers import all_failed
from proxy.pipeline.learning import tool_schemas
from proxy.pipeline.outcome import Outcome, Status
from proxy.pipeline.request import ChatRequest
from proxy.pipeline.services import Services
from proxy.pipeline.splice import continuation_body
from proxy.pipeline.streaming import SSE_HEADERS, FailureFrame, Relay, Resume, Resumed, chat_failure_frame
from proxy.wire.errors import ProxyError, error_response
from proxy.wire.sse_response import Reply, SSEResponse
from storage.errors import StoreUnavailable

log = logging.getLogger("model_manager.pipeline")
CHARS_PER_TOKEN = 4
T = TypeVar("T")

Call = Callable[[Arm, float], Awaitable[T]]
"""One attempt: the upstream call to ``arm`` within ``timeout`` seconds."""


@dataclass(frozen=True, slots=True)
class Answer(Generic[T]):
    """The attempt that answered: its arm, what it returned, and when it was sent."""

    arm: Arm
    result: T
    began: float


@dataclass(frozen=True, slots=True)
class Dialect:
    """The API a request speaks: how each attempt is sent (its answer's body is relayed as
    the call returns it) and how a relayed stream that breaks ends."""

    call: Call[Any]
    failure_frame: FailureFrame = chat_failure_frame
    resumable: bool = True
    """A break may be resumed by the next model (``router.resume_streams``; chat chunks only)."""


async def handle_chat(services: Services, request: ChatRequest, dialect: Dialect | None = None) -> Reply:
    """Route, forward and relay one chat completion (or, with ``dialect``, another API's
    request routed the same way). Its outcome is finished exactly once: here, or for a
    relayed stream when its body closes (however that ends)."""
    dialect = dialect or Dialect(chat_call(services, request))
    flight = await decide(services, request)
    relay: Relay | None = None
    try:
        answer = await attempts(services, request, flight, dialect.call)
        if isinstance(answer, ProxyError):
            return error_response(answer, flight.headers())
        if not request.stream:
            return _json_reply(flight, answer)
        relay = _relay(services, request, flight, answer, dialect)
        return SSEResponse(relay, {**SSE_HEADERS, **flight.headers(streaming=relay.pending)})
    finally:
        if relay is None:
            flight.finish()


async def decide(services: Services, request: ChatRequest) -> Flight:
    """Candidates, one store read, and the policy's ranking, in a Flight started now."""
    started = services.monotonic()
    decision_request = DecisionRequest(
        agent=request.agent,
        context=extract_context(
            request.messages, tools=bool(request.body.get("tools")), json_mode=request.wants_json
        ),
        candidates=candidates_for(services.config, request),
    )
    policy = services.router.policy_for(request.agent)
    snapshot = await _read(services, policy, decision_request)
    decision = policy.rank(decision_request, snapshot, services.rng)
    decided = Decided(
        request_id=request.request_id,
        decision_request=decision_request,
        decision=decision,
        snapshot=snapshot,
        workflow=request.workflow,
        started_at=services.clock(),
        wants_json=request.wants_json,
        tool_schemas=tool_schemas(request.body.get("tools")),
        requested_model=request.model,
        explanation=_explanation(
            services, request, policy, decision_request=decision_request, snapshot=snapshot, decision=decision
        ),
    )
    services.learner.begin(request.request_id)
    return Flight(decided, started=started, clock=services.monotonic, finished=partial(_finished, services))


async def attempts(
    services: Services, request: ChatRequest, flight: Flight, call: Call[T]
) -> Answer[T] | ProxyError:
    """The one attempt loop: planned arms in order until one answers, each counted against
    its rpm/tpm as it is sent; the error to answer with when none will."""
    router = services.config.router
    deadline = flight.started + router.deadline_s
    tokens = _estimated_tokens(request)
    for arm in plan(services, flight.decided.decision, tokens, flight.skipped):
        timeout = _timeout(router.attempt_timeout_s, deadline - services.monotonic())
        if timeout is None:
            break
        services.limits.sent(arm, tokens)
        began = services.monotonic()
        try:
            return Answer(arm, await call(arm, timeout), began)
        except UpstreamError as error:
            flight.attempted(arm.name, began, error.kind, message=error.message)
            if (rejected := _failed(services, flight, arm, error)) is not None:
                return rejected
        except asyncio.CancelledError:
            flight.attempted(arm.name, began, FailureKind.CANCELLED)
            raise
    flight.end(Status.FAILED)
    return all_failed(flight.attempts)


Skipped = Callable[[str, SkipReason], None]
"""Told of each model the plan passes over, and why."""


def plan(
    services: Services, decision: Decision, tokens: int, skipped: Skipped | None = None
) -> Iterator[Arm]:
    """Arms to try in order, at most ``router.max_attempts``: not resting after a 429, not at
    their rpm/tpm, large enough for the prompt (``skipped`` hears of each one passed over and
    why). Iterating spends no rate-limit budget."""
    tried = 0
    for name in decision.ranking:
        arm = services.config.arms[name]
        reason = skip_reason(services, arm, tokens)
        if reason is not None:
            if skipped is not None:
                skipped(name, reason)
            continue
        yield arm
        tried += 1
        if tried >= services.config.router.max_attempts:
            return


def _explanation(
    services: Services,
    request: ChatRequest,
    policy: Policy,
    *,
    decision_request: DecisionRequest,
    snapshot: Snapshot,
    decision: Decision,
) -> Explanation | None:
    """The decision's explanation when the request asked for one (costs nothing otherwise)."""
    if not request.explain:
        return None
    unavailable = sorted(services.config.unavailable)
    return explain(policy, decision_request, snapshot, decision, rng=services.rng, unavailable=unavailable)


def skip_reason(services: Services, arm: Arm, tokens: int) -> SkipReason | None:
    """Why ``arm`` may not be tried now, or None when it may."""
    if services.cooldowns.resting(arm.name):
        return SkipReason.COOLDOWN
    if services.limits.full(arm):
        return SkipReason.USAGE_LIMIT
    if _too_small(arm, tokens):
        return SkipReason.CONTEXT_WINDOW
    return None


async def _read(services: Services, policy: Policy, request: DecisionRequest) -> Snapshot:
    """The policy's evidence; priors alone when the store is unreachable."""
    try:
        return await services.store.load(policy.tables(request), request.candidates)
    except StoreUnavailable:
        services.counters.store_unavailable_reads += 1
        log.warning("store unavailable: deciding from priors (agent %s)", request.agent)
        return {}


def chat_call(services: Services, request: ChatRequest) -> Call[Any]:
    """The chat attempt for this request: a JSON completion, or a stream opened to its first chunk."""
    return partial(_open_stream if request.stream else _complete, services, request)


def first_chunk_timeout(services: Services, timeout: float) -> float:
    """How long a stream attempt with ``timeout`` seconds left may wait for its first chunk."""
    return min(services.config.router.first_chunk_timeout_s, timeout)


async def _complete(services: Services, request: ChatRequest, arm: Arm, timeout: float) -> Completion:
    return await services.upstream.complete(arm, request.body, timeout)


async def _open_stream(services: Services, request: ChatRequest, arm: Arm, timeout: float) -> ChunkStream:
    return await _open_body(services, request.body, arm, timeout)


async def _open_body(services: Services, body: dict[str, Any], arm: Arm, timeout: float) -> ChunkStream:
    return await services.upstream.open_stream(
        arm, body, first_chunk_timeout=first_chunk_timeout(services, timeout), timeout=timeout
    )


def _failed(services: Services, flight: Flight, arm: Arm, error: UpstreamError) -> ProxyError | None:
    """After a failed attempt: None to try the next model, or the error no model could fix."""
    _rest_after(services, arm, error)
    if error.kind.retryable:
        return None
    flight.end(Status.CLIENT_ERROR)
    status = error.status if error.status and 400 <= error.status < 500 else 400
    return ProxyError(status, "upstream_rejected_request", error.message)


def _rest_after(services: Services, arm: Arm, error: UpstreamError) -> None:
    """Rest ``arm`` after a 429 (its Retry-After) or an error of its own configuration."""
    if error.kind is FailureKind.RATE_LIMITED:
        services.cooldowns.rest(arm.name, error.retry_after_s)
    if error.kind.rests_model:
        _rest_misconfigured(services, arm, error)


def _rest_misconfigured(services: Services, arm: Arm, error: UpstreamError) -> None:
    """Leave a model whose configuration or credentials failed out of routing for a while,
    with one warning (a resting model is not tried again, so this logs once per rest)."""
    reason = f"{error.kind.value}: {error.message}"[:300]
    services.cooldowns.rest(arm.name, CONFIG_REST_S, reason)
    log.warning("model %s resting %.0f s: %s", arm.name, CONFIG_REST_S, reason)


def _json_reply(flight: Flight, answer: Answer[Completion]) -> Response:
    flight.attempted(answer.arm.name, answer.began)
    flight.end(Status.SUCCESS, answer.result.summary)
    return Response(answer.result.body, media_type="application/json", headers=flight.headers())


def _relay(
    services: Services, request: ChatRequest, flight: Flight, opened: Answer[ChunkStream], dialect: Dialect
) -> Relay:
    """The stream's body (its first chunk arrived now); the flight finishes when it closes."""
    resumable = dialect.resumable and services.config.router.resume_streams
    resume = _resumer(services, request, flight) if resumable else None
    return Relay(
        opened.result,
        flight,
        model=opened.arm.name,
        began=opened.began,
        first_chunk_at=flight.now(),
        on_close=flight.finish,
        resume=resume,
        wants_usage=wants_usage(request.body),
        now=flight.now,
        failure_frame=dialect.failure_frame,
    )


def _resumer(services: Services, request: ChatRequest, flight: Flight) -> Resume:
    """Opens a continuation with the next planned model not yet attempted, within the
    request's deadline; each failed opening is recorded (and rests its model as a failed
    attempt would) and the next model tried."""

    async def resume(partial: str) -> Resumed | None:
        body = continuation_body(request.body, partial)
        tried = {attempt.model for attempt in flight.attempts}
        tokens = _estimated_tokens(request) + len(partial) // CHARS_PER_TOKEN
        deadline = flight.started + services.config.router.deadline_s
        for arm in plan(services, flight.decided.decision, tokens):
            if arm.name in tried:
                continue
            timeout = _timeout(services.config.router.attempt_timeout_s, deadline - services.monotonic())
            if timeout is None:
                return None
            services.limits.sent(arm, tokens)
            began = services.monotonic()
            try:
                stream = await _open_body(services, body, arm, timeout)
            except UpstreamError as error:
                flight.attempted(arm.name, began, error.kind, message=error.message)
                _rest_after(services, arm, error)
                if not error.kind.retryable:
                    return None
                continue
            except asyncio.CancelledError:
                flight.attempted(arm.name, began, FailureKind.CANCELLED)
                raise
            return Resumed(arm.name, stream, began, attempts=len(flight.attempts) + 1)
        return None

    return resume


def _finished(services: Services, outcome: Outcome) -> None:
    """A request's one finish: its answer's tokens against the model's tpm, metrics, logs,
    then learning."""
    services.limits.answered(outcome)
    services.request_metrics.observe(outcome)
    services.access.finished(outcome)
    services.learner.submit(outcome)


def _timeout(attempt_timeout: float, remaining: float) -> float | None:
    return min(attempt_timeout, remaining) if remaining > 0.01 else None


def _estimated_tokens(request: ChatRequest) -> int:
    total = 0
    for message in request.messages:
        content = message.get("content")
        total += len(content) if isinstance(content, str) else len(str(content))
    return total // CHARS_PER_TOKEN


def _too_small(arm: Arm, tokens: int) -> bool:
    limit = arm.max_input_tokens
    return limit is not None and tokens > limit
