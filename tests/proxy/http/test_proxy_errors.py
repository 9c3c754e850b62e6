"""Every bad request gets an OpenAI-shaped error with the right status, before any upstream call."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from support.proxy_harness import MESSAGES, ProxyFactory, RunningProxy, basic_config, module_proxy_factory
from support.servers import FakeUpstream

__all__ = ["module_proxy_factory"]

MAX_BODY = 2048


@pytest.fixture(scope="module")
def strict(module_proxy_factory: ProxyFactory, _fake_upstream_session: FakeUpstream) -> RunningProxy:
    """model_field respect, a body limit, agent ``a`` limited to m2 (shared by this module)."""
    return module_proxy_factory(
        basic_config(
            _fake_upstream_session,
            ("m1", "m2"),
            router={"model_field": "respect"},
            server={"max_body_bytes": MAX_BODY},
            agents={"a": {"models": ["m2"]}},
        )
    )


def assert_openai_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """``response`` is ``{"error": {message, type, code}}`` with ``status`` and ``code``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    assert error["code"] == code
    return error


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "m1", "messages": MESSAGES, **fields}


BAD_BODIES: dict[str, tuple[bytes, str, str | None]] = {
    "not json": (b'{"model": "m1", "messages": [', "invalid_json", None),
    "empty body": (b"", "invalid_json", None),
    "array body": (b"[1, 2]", "invalid_json", None),
    "string body": (b'"hello"', "invalid_json", None),
    "no messages": (b'{"model": "m1"}', "invalid_request", "messages"),
    "empty messages": (b'{"model": "m1", "messages": []}', "invalid_request", "messages"),
    "messages not a list": (b'{"model": "m1", "messages": "hi"}', "invalid_request", "messages"),
    "message not an object": (b'{"model": "m1", "messages": ["hi"]}', "invalid_request", "messages"),
    "message without role": (
        b'{"model": "m1", "messages": [{"content": "x"}]}',
        "invalid_request",
        "messages",
    ),
    "stream not bool": (
        b'{"model": "m1", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}',
        "invalid_request",
        "stream",
    ),
    "model not a string": (
        b'{"model": 42, "messages": [{"role": "user", "content": "x"}]}',
        "invalid_request",
        "model",
    ),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_bad_body_is_400(strict: RunningProxy, fake_upstream: FakeUpstream, case: str) -> None:
    raw, code, param = BAD_BODIES[case]
    response = strict.post(content=raw, headers={"content-type": "application/json"})
    error = assert_openai_error(response, 400, code)
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param
    assert fake_upstream.bodies() == []


def test_body_over_limit_is_413(strict: RunningProxy, fake_upstream: FakeUpstream) -> None:
    big = chat(messages=[{"role": "user", "content": "x" * (MAX_BODY + 10)}])
    assert_openai_error(strict.post(big), 413, "request_too_large")
    assert fake_upstream.bodies() == []


def test_chunked_body_over_limit_is_413(strict: RunningProxy) -> None:
    def chunks() -> Any:
        for _ in range(10):
            yield b"x" * 1000

    response = httpx.post(f"{strict.base_url}/chat/completions", content=chunks(), timeout=10)
    assert "content-length" not in response.request.headers
    assert_openai_error(response, 413, "request_too_large")


def test_body_just_under_limit_is_accepted(strict: RunningProxy) -> None:
    body = chat(model="m2", messages=[{"role": "user", "content": "x" * (MAX_BODY - 200)}])
    assert strict.post(body).status_code == 200


def test_unknown_model_with_respect_is_404(strict: RunningProxy, fake_upstream: FakeUpstream) -> None:
    error = assert_openai_error(strict.post(chat(model="gpt-nope")), 404, "model_not_found")
    assert "gpt-nope" in error["message"] and error["param"] == "model"
    assert fake_upstream.bodies() == []


def test_respect_serves_the_named_model(strict: RunningProxy) -> None:
    response = strict.post(chat(model="m2"))
    assert response.status_code == 200
    assert response.headers["x-model-manager-model"] == "m2"


def test_pin_header_with_unknown_model_is_404(strict: RunningProxy) -> None:
    response = strict.post(chat(model="nope"), headers={"X-Model-Manager-Pin": "true"})
    assert_openai_error(response, 404, "model_not_found")


def test_pin_header_without_concrete_model_is_400(strict: RunningProxy) -> None:
    response = strict.post(chat(model="auto"), headers={"X-Model-Manager-Pin": "true"})
    assert_openai_error(response, 400, "invalid_request")


def test_model_the_agent_may_not_use_is_403(strict: RunningProxy, fake_upstream: FakeUpstream) -> None:
    response = strict.post(chat(model="m1"), headers={"X-Agent": "a"})
    error = assert_openai_error(response, 403, "model_not_allowed")
    assert error["type"] == "permission_error"
    assert fake_upstream.bodies() == []


def test_pinning_a_model_the_agent_may_not_use_is_403(strict: RunningProxy) -> None:
    headers = {"X-Agent": "a", "X-Model-Manager-Pin": "true"}
    assert_openai_error(strict.post(chat(model="m1"), headers=headers), 403, "model_not_allowed")


HOSTILE: dict[str, str | bytes] = {
    "too long": "a" * 65,
    "braces": "{agent}",
    "space": "my agent",
    "leading dash": "-agent",
    "tab": "a\tb",
    "quote": 'a"b',
    "star": "a*",
    "unicode": "agént".encode(),
    "dollar": "$(reboot)",
}


@pytest.mark.parametrize("header", ["X-Agent", "X-Workflow"])
@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_header_is_400(
    strict: RunningProxy, fake_upstream: FakeUpstream, header: str, case: str
) -> None:
    value = HOSTILE[case]
    if header == "X-Workflow" and case == "too long":
        value = "w" * 129
    response = strict.post(chat(model="m2"), headers={header: value})  # type: ignore[dict-item]
    error = assert_openai_error(response, 400, "invalid_header")
    assert error["param"] == header
    assert fake_upstream.bodies() == []


@pytest.mark.parametrize("value", [b"a\x7fb", b"a\x01b"])
def test_control_characters_never_reach_the_app(
    strict: RunningProxy, fake_upstream: FakeUpstream, value: bytes
) -> None:
    # uvicorn's HTTP parser rejects these before the app sees them; proxy.http.bad_http.answer's protocol
    # answers with the usual JSON (test_bad_http covers the raw wire and both protocols)
    response = strict.post(chat(model="m2"), headers={"X-Agent": value})  # type: ignore[dict-item]
    error = assert_openai_error(response, 400, "invalid_http_request")
    assert error["type"] == "invalid_request_error"
    assert fake_upstream.bodies() == []


def test_longest_valid_names_are_accepted(strict: RunningProxy) -> None:
    headers = {"X-Agent": "a" * 64, "X-Workflow": "w" * 128}
    assert strict.post(chat(model="m2"), headers=headers).status_code == 200


def test_unknown_route_is_openai_shaped_404(strict: RunningProxy) -> None:
    response = httpx.get(f"{strict.base_url}/nothing/here", timeout=5)
    assert_openai_error(response, 404, "not_found")


def test_wrong_method_is_openai_shaped_405(strict: RunningProxy) -> None:
    response = httpx.get(f"{strict.base_url}/chat/completions", timeout=5)
    assert_openai_error(response, 405, "method_not_allowed")
