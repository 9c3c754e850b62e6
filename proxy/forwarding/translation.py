"""litellm's request and response translation, driven without litellm.acompletion.

For a provider on the allowlist, a deployment's route (provider, provider config, URL, key) is
resolved once; each request then runs the same transforms ``litellm.acompletion`` runs for that
provider (optional-param mapping, ``validate_environment``, ``transform_request``,
``transform_response``, the provider's stream chunk parser), minus its logging, thread-pool
dispatch and stream wrapper. The HTTP call is proxy.forwarding.translated's. This module does not import
litellm: proxy.forwarding.litellm_upstream hands it the pieces as a ``Kit``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from proxy.config.settings import Arm
from proxy.forwarding.base import UpstreamError, with_usage

FAST_PROVIDERS = frozenset({"anthropic"})
"""Providers whose translated path is verified against litellm.acompletion (tests/test_translated.py)."""

ARM_PARAMS = frozenset({"model", "api_base", "api_key", "extra_headers"})
"""Deployment params the translated path honours; any other sends the arm through acompletion."""

BODY_KEYS = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "n",
        "user",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
    }
)
"""Request fields checked to translate like acompletion; a request with others goes through it."""

OPENAI_PARAMS = BODY_KEYS - {"model", "messages", "user"}


class Kit(Protocol):
    """The litellm functions the translated path needs (implemented in proxy.forwarding.litellm_upstream)."""

    def resolve(
        self, model: str, api_base: str | None, api_key: str | None
    ) -> tuple[str, str, str | None, str]:
        """(model, provider, api key, full chat URL) for a deployment."""
        ...

    def chat_config(self, model: str, provider: str) -> Any:
        """The provider's chat config (transform_request, transform_response, ...)."""
        ...

    def optional_params(self, model: str, provider: str, messages: list[Any], params: dict[str, Any]) -> Any:
        """litellm.utils.get_optional_params for these OpenAI params."""
        ...

    def finish_request(self, provider: str, headers: Any, data: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """The provider handler's last touch on headers and body before sending."""
        ...

    def http_response(self, status: int, raw: bytes, headers: Mapping[str, str], url: str) -> Any:
        """The raw answer in the shape transform_response reads."""
        ...

    def model_response(self) -> Any:
        """A fresh litellm ModelResponse."""
        ...

    def stream_parser(self, provider: str, config: Any, prepared: Prepared) -> Any:
        """An object whose ``chunk_parser(dict)`` turns one stream event into a chunk."""
        ...

    def failure(self, route: Route, status: int, text: str, headers: Mapping[str, str]) -> UpstreamError:
        """An upstream error status, mapped as litellm maps it."""
        ...

    def exception(self, exc: BaseException, route: Route, *, mid_stream: bool = False) -> UpstreamError:
        """A litellm exception raised by a transform, mapped like acompletion's."""
        ...


@dataclass(frozen=True, slots=True)
class Route:
    """Where and how one deployment is called (resolved once)."""

    arm: Arm
    model: str
    provider: str
    config: Any
    url: str
    api_key: str | None
    headers: Mapping[str, str]


@dataclass(slots=True)
class Prepared:
    """One translated request and what its response translation needs."""

    headers: dict[str, str]
    data: bytes
    request: dict[str, Any]
    messages: list[Any]
    optional_params: dict[str, Any]
    litellm_params: dict[str, Any]
    json_mode: bool


def resolve_route(arm: Arm, kit: Kit) -> Route | None:
    """The arm's route when the translated path carries it faithfully, else None."""
    params = arm.params
    if not set(params) <= ARM_PARAMS:
        return None
    key = params.get("api_key")
    try:
        model, provider, dynamic_key, url = kit.resolve(arm.litellm_model, params.get("api_base"), key)
    except Exception:  # litellm cannot resolve it: acompletion reports why, per request
        return None
    if provider not in FAST_PROVIDERS:
        return None
    extra = params.get("extra_headers")
    headers = {str(k): str(v) for k, v in extra.items()} if isinstance(extra, dict) else {}
    config = kit.chat_config(model, provider)
    return Route(arm, model, provider, config, url, key if isinstance(key, str) else dynamic_key, headers)


def carries(body: Mapping[str, Any]) -> bool:
    """Whether this request's fields are all ones the translated path is verified for."""
    return all(key in BODY_KEYS for key in body)


class Translator:
    """Requests and responses of one route, through litellm's provider transforms."""

    def __init__(self, route: Route, kit: Kit) -> None:
        self.route, self._kit = route, kit

    def prepare(self, body: Mapping[str, Any], *, stream: bool) -> Prepared:
        """The provider request for an OpenAI body (which is not modified); raises UpstreamError."""
        try:
            return self._prepare(body, stream)
        except UpstreamError:
            raise
        except Exception as exc:
            raise self._kit.exception(exc, self.route) from exc

    def _prepare(self, body: Mapping[str, Any], stream: bool) -> Prepared:
        route = self.route
        messages = route.config.translate_developer_role_to_system_role(messages=_copy(body.get("messages")))
        optional = self._kit.optional_params(route.model, route.provider, messages, _params(body, stream))
        optional.pop("stream", None)
        json_mode = bool(optional.pop("json_mode", False))
        optional["is_vertex_request"] = False
        litellm_params: dict[str, Any] = {"api_base": route.url}
        headers, request = self._transform(messages, optional, litellm_params)
        if stream:
            request["stream"] = True
        data = orjson.dumps(request)
        return Prepared(headers, data, request, messages, optional, litellm_params, json_mode)

    def _transform(
        self, messages: list[Any], optional: dict[str, Any], litellm_params: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Headers and body as the provider's handler builds them (transforms get copies)."""
        route, config = self.route, self.route.config
        headers = config.validate_environment(
            headers=dict(route.headers),
            model=route.model,
            messages=messages,
            optional_params=dict(optional),
            litellm_params=litellm_params,
            api_key=route.api_key,
            api_base=route.url,
        )
        request = config.transform_request(
            model=route.model,
            messages=messages,
            optional_params=dict(optional),
            litellm_params=litellm_params,
            headers=headers,
        )
        return self._kit.finish_request(route.provider, headers, request)

    def completion(self, prepared: Prepared, raw: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        """The OpenAI chat.completion dict for a 200 answer; raises UpstreamError."""
        route = self.route
        try:
            response = route.config.transform_response(
                model=route.model,
                raw_response=self._kit.http_response(200, raw, headers, route.url),
                model_response=self._kit.model_response(),
                logging_obj=_NoLogging(),
                request_data=prepared.request,
                messages=prepared.messages,
                optional_params=prepared.optional_params,
                litellm_params=prepared.litellm_params,
                encoding=None,
                api_key=route.api_key,
                json_mode=prepared.json_mode,
            )
        except Exception as exc:
            raise self._kit.exception(exc, route) from exc
        payload: dict[str, Any] = response.model_dump()
        return payload

    def parser(self, prepared: Prepared) -> Any:
        """A fresh stream chunk parser for this request."""
        return self._kit.stream_parser(self.route.provider, self.route.config, prepared)

    def failure(self, status: int, raw: bytes, headers: Mapping[str, str]) -> UpstreamError:
        return self._kit.failure(self.route, status, raw.decode("utf-8", "replace"), headers)

    def exception(self, exc: BaseException, *, mid_stream: bool = False) -> UpstreamError:
        return self._kit.exception(exc, self.route, mid_stream=mid_stream)


class _NoLogging:
    """Stands in for litellm's per-call Logging object: the proxy logs and prices calls itself."""

    def __init__(self) -> None:
        self.model_call_details: dict[str, Any] = {}

    def post_call(self, *args: Any, **kwargs: Any) -> None:
        return None

    def pre_call(self, *args: Any, **kwargs: Any) -> None:
        return None


def _params(body: Mapping[str, Any], stream: bool) -> dict[str, Any]:
    """The OpenAI params as proxy.forwarding.litellm_upstream.call_kwargs hands them to acompletion."""
    params = {key: value for key, value in body.items() if key in OPENAI_PARAMS}
    params["stream"] = stream
    params["max_retries"] = 0
    if stream:
        params["stream_options"] = with_usage(body)
    if "user" in body:
        params["user"] = body["user"]
        params["extra_body"] = {"user": body["user"]}
    return params


def _copy(value: Any) -> Any:
    """A deep copy of JSON data (transforms rewrite messages in place; a fallback reuses them)."""
    return orjson.loads(orjson.dumps(value))
