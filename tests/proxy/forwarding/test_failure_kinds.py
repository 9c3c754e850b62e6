"""The classification table: every litellm exception class and every HTTP error status to
its FailureKind, and what each kind does (falls back, rests the model, blames the client).
Also: an upstream's HTML error page never reaches an error message."""

from __future__ import annotations

import httpx
import litellm.exceptions as lx
import pytest

from proxy.config.settings import parse_config
from proxy.forwarding.base import FailureKind, error_reason, kind_for_status, without_html
from proxy.forwarding.litellm_upstream import map_exception

K = FailureKind
ARM = parse_config(
    {"model_list": [{"model_name": "m", "litellm_params": {"model": "openai/m", "api_key": "sk-x"}}]}
).arms["m"]
REQUEST = httpx.Request("POST", "http://upstream/v1/chat/completions")
HTML_413 = (
    "<html><head><title>413 Request Entity Too Large</title></head><body><h1>Too Large</h1></body></html>"
)


def _response(status: int) -> httpx.Response:
    return httpx.Response(status, request=REQUEST)


def _common(message: str = "boom") -> dict[str, object]:
    return {"message": message, "llm_provider": "openai", "model": "m"}


LITELLM_TABLE: list[tuple[str, BaseException, FailureKind]] = [
    (
        "BadRequestError (request's field)",
        lx.BadRequestError(**_common("Invalid 'temperature': 7")),
        K.CLIENT,
    ),
    (
        "BadRequestError (resolution)",
        lx.BadRequestError(**_common("LLM Provider NOT provided. Pass in the LLM provider")),
        K.CONFIG,
    ),
    (
        "BadRequestError (model does not exist)",
        lx.BadRequestError(**_common("model x does not exist")),
        K.CONFIG,
    ),
    ("AuthenticationError", lx.AuthenticationError(**_common(), response=_response(401)), K.AUTH),
    ("PermissionDeniedError", lx.PermissionDeniedError(**_common(), response=_response(403)), K.AUTH),
    ("NotFoundError", lx.NotFoundError(**_common(), response=_response(404)), K.NOT_FOUND),
    ("RateLimitError", lx.RateLimitError(**_common(), response=_response(429)), K.RATE_LIMITED),
    ("ContextWindowExceededError", lx.ContextWindowExceededError(**_common()), K.CONTEXT_WINDOW),
    ("ContentPolicyViolationError", lx.ContentPolicyViolationError(**_common()), K.CONTENT_FILTER),
    ("APIConnectionError", lx.APIConnectionError(**_common(), request=REQUEST), K.CONNECTION),
    ("Timeout", lx.Timeout(**_common()), K.TIMEOUT),
    ("ServiceUnavailableError", lx.ServiceUnavailableError(**_common(), response=_response(503)), K.SERVER),
    ("InternalServerError", lx.InternalServerError(**_common(), response=_response(500)), K.SERVER),
    ("BadGatewayError", lx.BadGatewayError(**_common(), response=_response(502)), K.SERVER),
    (
        "UnprocessableEntityError",
        lx.UnprocessableEntityError(**_common("messages.0: bad role"), response=_response(422)),
        K.CLIENT,
    ),
    ("APIError 500", lx.APIError(500, **_common(), request=REQUEST), K.SERVER),
    ("APIError 413 (HTML)", lx.APIError(413, **_common(HTML_413), request=REQUEST), K.CONTEXT_WINDOW),
    ("APIError 401", lx.APIError(401, **_common(), request=REQUEST), K.AUTH),
    ("UnsupportedParamsError", lx.UnsupportedParamsError(**_common()), K.NOT_FOUND),
    ("APIResponseValidationError", lx.APIResponseValidationError(**_common()), K.BAD_RESPONSE),
]


@pytest.mark.parametrize(("name", "exc", "kind"), LITELLM_TABLE, ids=[row[0] for row in LITELLM_TABLE])
def test_each_litellm_exception_maps_to_its_kind(name: str, exc: BaseException, kind: FailureKind) -> None:
    error = map_exception(exc, ARM)
    assert error.kind is kind, (name, error.message)
    assert "<" not in error.message, error.message


STATUS_TABLE: list[tuple[int, str, FailureKind]] = [
    (400, '{"error": {"message": "Invalid value for temperature"}}', K.CLIENT),
    (400, '{"error": {"code": "context_length_exceeded"}}', K.CONTEXT_WINDOW),
    (400, "This model's maximum context length is 8192 tokens", K.CONTEXT_WINDOW),
    (400, '{"error": {"code": "content_policy_violation"}}', K.CONTENT_FILTER),
    (400, '{"error": {"code": "model_not_found", "message": "The model x does not exist"}}', K.CONFIG),
    (401, "", K.AUTH),
    (403, "", K.AUTH),
    (404, "", K.NOT_FOUND),
    (408, "", K.TIMEOUT),
    (409, "", K.CLIENT),
    (413, HTML_413, K.CONTEXT_WINDOW),
    (422, '{"error": {"message": "messages: field required"}}', K.CLIENT),
    (429, "", K.RATE_LIMITED),
    (500, "", K.SERVER),
    (502, "", K.SERVER),
    (503, "", K.SERVER),
    (504, "", K.SERVER),
]


@pytest.mark.parametrize(("status", "text", "kind"), STATUS_TABLE)
def test_each_http_status_maps_to_its_kind(status: int, text: str, kind: FailureKind) -> None:
    assert kind_for_status(status, text) is kind


KIND_TABLE: list[tuple[FailureKind, bool, bool, bool]] = [
    # kind, falls back (retryable), model at fault, rests the model
    (K.CLIENT, False, False, False),
    (K.CANCELLED, False, False, False),
    (K.CONFIG, True, True, True),
    (K.AUTH, True, True, True),
    (K.NOT_FOUND, True, True, True),
    (K.RATE_LIMITED, True, True, False),
    (K.CONTEXT_WINDOW, True, True, False),
    (K.CONTENT_FILTER, True, True, False),
    (K.TIMEOUT, True, True, False),
    (K.CONNECTION, True, True, False),
    (K.SERVER, True, True, False),
    (K.BAD_RESPONSE, True, True, False),
    (K.STREAM_CUT, True, True, False),
]


def test_the_kind_table_covers_every_kind() -> None:
    assert {row[0] for row in KIND_TABLE} == set(FailureKind)


@pytest.mark.parametrize(("kind", "retryable", "at_fault", "rests"), KIND_TABLE)
def test_what_each_kind_does(kind: FailureKind, retryable: bool, at_fault: bool, rests: bool) -> None:
    assert (kind.retryable, kind.model_at_fault, kind.rests_model) == (retryable, at_fault, rests)


def test_an_html_page_becomes_its_status_and_first_words() -> None:
    assert error_reason(413, HTML_413) == "HTTP 413: 413 Request Entity Too Large Too Large"
    assert without_html(f"OpenAIException - {HTML_413}", 413).startswith("HTTP 413: OpenAIException - 413")
    assert without_html("plain words < 3 stay as they are") == "plain words < 3 stay as they are"
    assert error_reason(400, '{"error": {"message": "x"}}') == '{"error": {"message": "x"}}'
