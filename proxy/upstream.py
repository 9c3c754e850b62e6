"""The one module that imports litellm: calls and exception mapping.

litellm resolves the provider, translates the request, and raises its exception hierarchy,
which is mapped to FailureKind here only. (Prices: proxy.price_map reads litellm's map as data.)
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

import litellm
import openai
import orjson
from litellm.exceptions import (
    APIConnectionError,
    BadRequestError,
    ContentPolicyViolationError,
    ContextWindowExceededError,
    RateLimitError,
    Timeout,
    UnprocessableEntityError,
    UnsupportedParamsError,
)

from proxy.completion import Completion, Summary
from proxy.config import Arm
from proxy.failures import FailureKind, UpstreamError, kind_for_status

litellm.telemetry = False
litellm.suppress_debug_info = True
# litellm would rebuild and price every finished stream for its own logging; we price from
# the stream's usage ourselves (Forwarder.cost), so skip that per-stream work.
litellm.disable_streaming_logging = True
for _logger in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
    logging.getLogger(_logger).setLevel(logging.WARNING)

_SECRET = re.compile(r"(sk|key|Bearer)[-_ ]?[A-Za-z0-9_\-]{12,}")
DONE = b"data: [DONE]\n\n"


class LitellmUpstream:
    """Forwards OpenAI-shaped requests to any provider litellm supports."""

    async def complete(self, arm: Arm, body: Mapping[str, Any], timeout: float) -> Completion:
        """One non-streaming call; raises UpstreamError."""
        try:
            response = await litellm.acompletion(**call_kwargs(arm, body, timeout, stream=False))
        except Exception as exc:
            raise map_exception(exc, arm) from exc
        payload = response.model_dump()
        summary = Summary()
        summary.add_payload(payload)
        return Completion(dump_json(payload), summary)

    async def open_stream(
        self, arm: Arm, body: Mapping[str, Any], *, first_chunk_timeout: float, timeout: float
    ) -> LitellmStream:
        """Open a stream and wait for its first chunk; raises UpstreamError before it."""
        wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        kwargs = call_kwargs(arm, body, timeout, stream=True)
        kwargs["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        try:
            wrapper = await asyncio.wait_for(litellm.acompletion(**kwargs), first_chunk_timeout)
            stream = LitellmStream(arm, wrapper, wants_usage)
            await asyncio.wait_for(stream.read_first(), first_chunk_timeout)
        except UpstreamError:
            raise
        except Exception as exc:
            raise map_exception(exc, arm) from exc
        return stream



class LitellmStream:
    """A litellm stream relayed as OpenAI SSE frames."""

    def __init__(self, arm: Arm, wrapper: Any, wants_usage: bool):
        self._arm, self._wrapper = arm, wrapper
        self._wants_usage = wants_usage
        self.summary = Summary()
        self.first = b""

    async def read_first(self) -> None:
        async for frame in self._frames():
            self.first = frame
            return
        raise UpstreamError(FailureKind.BAD_RESPONSE, "upstream stream ended before any chunk")

    async def events(self) -> AsyncIterator[bytes]:
        try:
            async for frame in self._frames():
                yield frame
        except UpstreamError:
            raise
        except Exception as exc:
            raise map_exception(exc, self._arm, mid_stream=True) from exc
        yield DONE

    async def _frames(self) -> AsyncIterator[bytes]:
        async for chunk in self._wrapper:
            payload = chunk.model_dump(exclude_none=True)
            self.summary.add_payload(payload)
            if payload.get("usage") and not any(_carries(c) for c in payload.get("choices") or ()):
                payload["choices"] = []  # litellm pads the usage-only chunk with an empty choice
            if not self._wants_usage:
                payload.pop("usage", None)
            if payload.get("choices") or self._wants_usage:
                yield b"data: " + dump_json(payload) + b"\n\n"

    async def aclose(self) -> None:
        await self._wrapper.aclose()


def _carries(choice: Any) -> bool:
    """A stream choice with a delta or a finish reason (not litellm's empty padding)."""
    return isinstance(choice, dict) and bool(choice.get("delta") or choice.get("finish_reason"))


def call_kwargs(arm: Arm, body: Mapping[str, Any], timeout: float, *, stream: bool) -> dict[str, Any]:
    """litellm.acompletion arguments: the client's body, then the deployment's params."""
    kwargs = {key: value for key, value in body.items() if key not in ("model", "stream")}
    kwargs.update(arm.params)
    if "user" in body:  # litellm drops `user` for openai/<name> models it does not know
        kwargs["extra_body"] = {**(kwargs.get("extra_body") or {}), "user": body["user"]}
    kwargs.update(stream=stream, timeout=timeout, max_retries=0, num_retries=0)
    return kwargs


def map_exception(exc: BaseException, arm: Arm, *, mid_stream: bool = False) -> UpstreamError:
    """The one place litellm's exceptions become FailureKinds."""
    status = getattr(exc, "status_code", None)
    kind = _kind(exc, status if isinstance(status, int) else None)
    if mid_stream and kind.retryable:
        kind = FailureKind.STREAM_CUT
    message = redact(f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}", arm)
    retry_after = _retry_after(exc) if kind is FailureKind.RATE_LIMITED else None
    return UpstreamError(kind, message[:500], status=status, retry_after_s=retry_after)


def _kind(exc: BaseException, status: int | None) -> FailureKind:
    checks: tuple[tuple[type[BaseException], FailureKind], ...] = (
        (ContextWindowExceededError, FailureKind.CONTEXT_WINDOW),
        (ContentPolicyViolationError, FailureKind.CONTENT_FILTER),
        (UnsupportedParamsError, FailureKind.NOT_FOUND),
        (Timeout, FailureKind.TIMEOUT),
        (asyncio.TimeoutError, FailureKind.TIMEOUT),
        (RateLimitError, FailureKind.RATE_LIMITED),
        (APIConnectionError, FailureKind.CONNECTION),
        (BadRequestError, FailureKind.CLIENT),
        (UnprocessableEntityError, FailureKind.CLIENT),
    )
    for exc_type, kind in checks:
        if isinstance(exc, exc_type):
            return kind
    if (cause := _cause_kind(exc)) is not None:
        return cause
    if status is not None and status >= 400:
        return kind_for_status(status, str(exc))
    return FailureKind.BAD_RESPONSE


def _cause_kind(exc: BaseException) -> FailureKind | None:
    """What litellm's generic 500 wraps: a refused connection or a body that is not JSON."""
    cause = exc.__cause__ or exc.__context__
    for _ in range(8):
        if cause is None:
            return None
        if isinstance(cause, openai.APITimeoutError):
            return FailureKind.TIMEOUT
        if isinstance(cause, openai.APIConnectionError | ConnectionError):
            return FailureKind.CONNECTION
        if isinstance(cause, json.JSONDecodeError):
            return FailureKind.BAD_RESPONSE
        cause = cause.__cause__ or cause.__context__
    return None


def _retry_after(exc: BaseException) -> float | None:
    for headers in (
        getattr(exc, "litellm_response_headers", None),
        getattr(getattr(exc, "response", None), "headers", None),
    ):
        value = headers.get("retry-after") if headers is not None else None
        try:
            return max(0.0, float(value)) if value is not None else None
        except (TypeError, ValueError):
            continue
    return None


def redact(message: str, arm: Arm) -> str:
    """``message`` without the deployment's API key or anything shaped like a secret."""
    key = arm.params.get("api_key")
    if isinstance(key, str) and len(key) >= 4:
        message = message.replace(key, "[redacted]")
    return _SECRET.sub("[redacted]", message)


def dump_json(payload: Any) -> bytes:
    return orjson.dumps(payload, default=str)
