"""The one module that imports litellm: calls and exception mapping.

litellm resolves the provider, translates the request, and raises its exception hierarchy,
which is mapped to FailureKind here only. (Prices: proxy.forwarding.price_map reads litellm's map as data.)
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import httpx
import litellm
import openai
import orjson
from litellm.anthropic_beta_headers_manager import update_request_with_filtered_beta
from litellm.exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    AuthenticationError,
    BadRequestError,
    ContentPolicyViolationError,
    ContextWindowExceededError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    Timeout,
    UnprocessableEntityError,
    UnsupportedParamsError,
)
from litellm.litellm_core_utils.exception_mapping_utils import exception_type
from litellm.llms.anthropic.chat.handler import ModelResponseIterator as AnthropicChunkParser
from litellm.llms.anthropic.chat.transformation import ANTHROPIC_TOOL_NAME_REVERSE_MAP_KEY
from litellm.secret_managers.main import get_secret_bool, get_secret_str
from litellm.types.utils import LlmProviders
from litellm.utils import ProviderConfigManager, get_optional_params

from proxy.config.settings import Arm
from proxy.forwarding.base import (
    CONFIG_HINTS,
    Completion,
    FailureKind,
    Summary,
    UpstreamError,
    guarded,
    kind_for_status,
    retry_after_s,
    wants_usage,
    with_usage,
    without_html,
)
from proxy.forwarding.sse_events import DONE
from proxy.forwarding.translation import Prepared, Route, Translator, resolve_route

litellm.telemetry = False
litellm.suppress_debug_info = True
# litellm would rebuild and price every finished stream for its own logging; we price from
# the stream's usage ourselves (Forwarder.cost), so skip that per-stream work.
litellm.disable_streaming_logging = True
# The router falls back to another model itself. litellm's openai embedding reads
# ``max_retries or litellm.DEFAULT_MAX_RETRIES``, so an explicit 0 would still retry twice.
litellm.DEFAULT_MAX_RETRIES = 0  # type: ignore[attr-defined]
for _logger in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
    logging.getLogger(_logger).setLevel(logging.WARNING)

_SECRET = re.compile(r"(sk|key|Bearer)[-_ ]?[A-Za-z0-9_\-]{12,}")


class LitellmUpstream:
    """Forwards OpenAI-shaped requests to any provider litellm supports."""

    def translators(self, arms: Iterable[Arm]) -> dict[str, Translator]:
        """A translator for each arm the translated path carries (proxy.forwarding.translation)."""
        kit = LitellmKit()
        routes = {arm.name: resolve_route(arm, kit) for arm in arms}
        return {name: Translator(route, kit) for name, route in routes.items() if route is not None}

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

    async def embed(self, arm: Arm, body: Mapping[str, Any], timeout: float) -> bytes:
        """One embeddings call (litellm.aembedding); raises UpstreamError."""
        kwargs = {key: value for key, value in body.items() if key != "model"}
        kwargs.update(arm.params)
        try:
            response = await litellm.aembedding(**kwargs, timeout=timeout, max_retries=0, num_retries=0)
        except Exception as exc:
            raise map_exception(exc, arm) from exc
        return dump_json(response.model_dump())

    async def open_stream(
        self, arm: Arm, body: Mapping[str, Any], *, first_chunk_timeout: float, timeout: float
    ) -> LitellmStream:
        """Open a stream and wait for its first chunk; raises UpstreamError before it."""
        kwargs = call_kwargs(arm, body, timeout, stream=True)
        kwargs["stream_options"] = with_usage(body)
        try:
            wrapper = await asyncio.wait_for(litellm.acompletion(**kwargs), first_chunk_timeout)
            stream = LitellmStream(arm, wrapper, wants_usage(body))
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

    def events(self) -> AsyncIterator[bytes]:
        return guarded(self._frames(), self._cut, lambda: (DONE,))

    def _cut(self, exc: Exception) -> UpstreamError:
        return map_exception(exc, self._arm, mid_stream=True)

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


class LitellmKit:
    """litellm's translation pieces, handed to proxy.forwarding.translation (see its Kit protocol)."""

    def resolve(
        self, model: str, api_base: str | None, api_key: str | None
    ) -> tuple[str, str, str | None, str]:
        model, provider, key, base = litellm.get_llm_provider(model, api_base=api_base, api_key=api_key)
        return model, provider, key, _chat_url(provider, base)

    def chat_config(self, model: str, provider: str) -> Any:
        return ProviderConfigManager.get_provider_chat_config(model=model, provider=LlmProviders(provider))

    def optional_params(self, model: str, provider: str, messages: list[Any], params: dict[str, Any]) -> Any:
        return get_optional_params(model=model, custom_llm_provider=provider, messages=messages, **params)

    def finish_request(self, provider: str, headers: Any, data: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        return update_request_with_filtered_beta(headers=headers, request_data=data, provider=provider)

    def http_response(self, status: int, raw: bytes, headers: Mapping[str, str], url: str) -> Any:
        return httpx.Response(
            status, content=raw, headers=list(headers.items()), request=httpx.Request("POST", url)
        )

    def model_response(self) -> Any:
        return litellm.ModelResponse()

    def stream_parser(self, provider: str, config: Any, prepared: Prepared) -> Any:
        """The chunk parser litellm's own anthropic handler streams through."""
        return AnthropicChunkParser(
            streaming_response=None,
            sync_stream=False,
            json_mode=prepared.json_mode,
            speed=prepared.optional_params.get("speed"),
            tool_name_reverse_map=prepared.litellm_params.get(ANTHROPIC_TOOL_NAME_REVERSE_MAP_KEY),
        )

    def failure(self, route: Route, status: int, text: str, headers: Mapping[str, str]) -> UpstreamError:
        error = route.config.get_error_class(
            error_message=text, status_code=status, headers=httpx.Headers(list(headers.items()))
        )
        return self.exception(error, route)

    def exception(self, exc: BaseException, route: Route, *, mid_stream: bool = False) -> UpstreamError:
        """Mapped as acompletion maps a provider error (exception_type), then to a FailureKind."""
        try:
            mapped = exception_type(  # type: ignore[no-untyped-call]
                model=route.model, original_exception=exc, custom_llm_provider=route.provider
            )
        except Exception as raised:
            mapped = raised
        return map_exception(
            mapped if isinstance(mapped, BaseException) else exc, route.arm, mid_stream=mid_stream
        )


def _chat_url(provider: str, api_base: str | None) -> str:
    """The chat URL litellm's main.completion derives for the provider (anthropic's only so far)."""
    if provider != "anthropic":
        return api_base or ""
    base = api_base or litellm.api_base or get_secret_str("ANTHROPIC_API_BASE")
    base = base or get_secret_str("ANTHROPIC_BASE_URL") or "https://api.anthropic.com/v1/messages"
    suffix = not get_secret_bool("LITELLM_ANTHROPIC_DISABLE_URL_SUFFIX") and not base.endswith("/v1/messages")
    return base + "/v1/messages" if suffix else base


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
    raw_status = getattr(exc, "status_code", None)
    status = raw_status if isinstance(raw_status, int) else None
    kind = _kind(exc, status)
    if mid_stream and kind.retryable:
        kind = FailureKind.STREAM_CUT
    text = without_html(str(getattr(exc, "message", None) or exc), status)
    message = redact(f"{type(exc).__name__}: {text}", arm)
    retry_after = _retry_after(exc) if kind is FailureKind.RATE_LIMITED else None
    return UpstreamError(kind, message[:500], status=status, retry_after_s=retry_after)


def _kind(exc: BaseException, status: int | None) -> FailureKind:
    if _names_deployment(exc):
        return FailureKind.CONFIG
    checks: tuple[tuple[type[BaseException], FailureKind], ...] = (
        (ContextWindowExceededError, FailureKind.CONTEXT_WINDOW),
        (ContentPolicyViolationError, FailureKind.CONTENT_FILTER),
        (UnsupportedParamsError, FailureKind.NOT_FOUND),
        (AuthenticationError, FailureKind.AUTH),
        (PermissionDeniedError, FailureKind.AUTH),
        (NotFoundError, FailureKind.NOT_FOUND),
        (APIResponseValidationError, FailureKind.BAD_RESPONSE),
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


def _names_deployment(exc: BaseException) -> bool:
    """A 400/422 (or litellm's own resolution error) blaming the model or provider:
    the deployment's configuration, not the request (base.CONFIG_HINTS)."""
    if not isinstance(exc, BadRequestError | UnprocessableEntityError) or isinstance(
        exc, ContextWindowExceededError | ContentPolicyViolationError
    ):
        return False
    text = str(getattr(exc, "message", None) or exc).lower()
    return any(hint in text for hint in CONFIG_HINTS)


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
        seconds = retry_after_s(headers.get("retry-after")) if headers is not None else None
        if seconds is not None:
            return seconds
    return None


def redact(message: str, arm: Arm) -> str:
    """``message`` without the deployment's API key or anything shaped like a secret."""
    key = arm.params.get("api_key")
    if isinstance(key, str) and len(key) >= 4:
        message = message.replace(key, "[redacted]")
    return _SECRET.sub("[redacted]", message)


def dump_json(payload: Any) -> bytes:
    return orjson.dumps(payload, default=str)
