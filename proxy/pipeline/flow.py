"""handle_chat: the request flow, top to bottom.

candidates -> one store read -> policy ranking -> attempts in order (fallback on
retryable failures) -> relay JSON or SSE -> outcome to the learner after the response.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

from starlette.responses import Response

from policies.base import Decision, DecisionRequest, Policy, Snapshot
from policies.features import extract_context
from proxy.config.settings import Arm
from proxy.forwarding.base import FailureKind, Summary, UpstreamError
from proxy.pipeline.candidates import candidates_for
from proxy.pipeline.headers import all_failed, response_headers
from proxy.pipeline.learning import tool_schemas
from proxy.pipeline.outcome import Attempt, Outcome, Status
from proxy.pipeline.request import ChatRequest
from proxy.pipeline.services import Services
from proxy.pipeline.streaming import stream_response
from proxy.wire.errors import ProxyError, error_response
from proxy.wire.sse_response import Reply
from storage.errors import StoreUnavailable

log = logging.getLogger("model_manager.pipeline")
CHARS_PER_TOKEN = 4


async def handle_chat(services: Services, request: ChatRequest) -> Reply:
    """Route, forward and relay one chat completion; the outcome is learned from once."""
    started = time.perf_counter()
    outcome = await decide(services, request)
    try:
        if request.stream:
            return await _stream(services, request, outcome, started)
        return await _complete(services, request, outcome, started)
    except asyncio.CancelledError:
        outcome.status = Status.CANCELLED
        services.learner.submit(outcome)
        raise


async def decide(services: Services, request: ChatRequest) -> Outcome:
    """Candidates, one store read, and the policy's ranking, wrapped in a fresh Outcome."""
    decision_request = DecisionRequest(
        agent=request.agent,
        context=extract_context(
            request.messages, tools=bool(request.body.get("tools")), json_mode=request.wants_json
        ),
        candidates=candidates_for(services.config, request),
    )
    policy = services.router.policy_for(request.agent)
    snapshot = await _read(services, policy, decision_request)
    return Outcome(
        request_id=request.request_id,
        decision_request=decision_request,
        decision=policy.rank(decision_request, snapshot, services.rng),
        snapshot=snapshot,
        workflow=request.workflow,
        started_at=services.clock(),
        wants_json=request.wants_json,
        tool_schemas=tool_schemas(request.body.get("tools")),
    )


async def _read(services: Services, policy: Policy, request: DecisionRequest) -> Snapshot:
    """The policy's evidence; priors alone when the store is unreachable."""
    try:
        return await services.store.load(policy.tables(request), request.candidates)
    except StoreUnavailable:
        services.counters.store_unavailable_reads += 1
        log.warning("store unavailable: deciding from priors (agent %s)", request.agent)
        return {}


def plan(services: Services, request: ChatRequest, decision: Decision) -> Iterator[Arm]:
    """Arms to try in order: not resting after a 429, not at their rpm/tpm, large enough
    for the prompt. Each arm yielded is counted as sent (proxy.pipeline.usage_limits)."""
    tokens = _estimated_tokens(request)
    tried = 0
    for name in decision.ranking:
        arm = services.config.arms[name]
        if services.cooldowns.resting(name) or services.limits.full(arm) or _too_small(arm, tokens):
            continue
        services.limits.sent(arm, tokens)
        yield arm
        tried += 1
        if tried >= services.config.router.max_attempts:
            return


async def _complete(services: Services, request: ChatRequest, outcome: Outcome, started: float) -> Response:
    deadline = started + services.config.router.deadline_s
    for arm in plan(services, request, outcome.decision):
        timeout = _timeout(services.config.router.attempt_timeout_s, deadline)
        if timeout is None:
            break
        began = time.perf_counter()
        try:
            completion = await services.upstream.complete(arm, request.body, timeout)
        except UpstreamError as error:
            if (response := _failed_attempt(services, outcome, arm, error, began)) is not None:
                return response
            continue
        outcome.attempts.append(Attempt(arm.name, None, time.perf_counter() - began))
        _succeeded(outcome, completion.summary)
        headers = response_headers(outcome, started, time.perf_counter())
        services.learner.submit(outcome)  # learned from by the writer task, after the response
        return Response(completion.body, media_type="application/json", headers=headers)
    return _give_up(services, outcome, started)


async def _stream(services: Services, request: ChatRequest, outcome: Outcome, started: float) -> Reply:
    router = services.config.router
    deadline = started + router.deadline_s
    for arm in plan(services, request, outcome.decision):
        timeout = _timeout(router.attempt_timeout_s, deadline)
        if timeout is None:
            break
        began = time.perf_counter()
        try:
            stream = await services.upstream.open_stream(
                arm,
                request.body,
                first_chunk_timeout=min(router.first_chunk_timeout_s, timeout),
                timeout=timeout,
            )
        except UpstreamError as error:
            if (response := _failed_attempt(services, outcome, arm, error, began)) is not None:
                return response
            continue
        return stream_response(services, outcome, arm, stream, started=started, began=began)
    return _give_up(services, outcome, started)


def _failed_attempt(
    services: Services, outcome: Outcome, arm: Arm, error: UpstreamError, began: float
) -> Response | None:
    """Record a failed attempt; a response when no other model could do better."""
    outcome.attempts.append(Attempt(arm.name, error.kind, time.perf_counter() - began, message=error.message))
    if error.kind is FailureKind.RATE_LIMITED:
        services.cooldowns.rest(arm.name, error.retry_after_s)
    if error.kind.retryable:
        return None
    outcome.status = Status.CLIENT_ERROR
    status = error.status if error.status and 400 <= error.status < 500 else 400
    proxy_error = ProxyError(status, "upstream_rejected_request", error.message)
    return _error_with_learning(services, outcome, proxy_error, time.perf_counter())


def _give_up(services: Services, outcome: Outcome, started: float) -> Response:
    outcome.status = Status.FAILED
    return _error_with_learning(services, outcome, all_failed(outcome), started)


def _error_with_learning(services: Services, outcome: Outcome, error: ProxyError, started: float) -> Response:
    outcome.latency_s = services.clock() - outcome.started_at
    services.learner.submit(outcome)
    return error_response(error, response_headers(outcome, started, time.perf_counter()))


def _succeeded(outcome: Outcome, summary: Summary) -> None:
    outcome.status = Status.SUCCESS
    outcome.summary = summary
    outcome.latency_s = outcome.attempts[-1].latency_s


def _timeout(attempt_timeout: float, deadline: float) -> float | None:
    remaining = deadline - time.perf_counter()
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
