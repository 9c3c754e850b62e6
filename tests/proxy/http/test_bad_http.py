"""Requests uvicorn's HTTP parser rejects get the same OpenAI-shaped JSON 400 as any bad request,
on both uvicorn protocols and through ``model-manager serve`` (one process and --workers)."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from support.proxy_harness import MESSAGES, ProxyFactory, RunningProxy, basic_config, module_proxy_factory
from support.redis_server import RedisServer
from support.servers import FakeUpstream, ProxyProcess

from proxy.http.bad_http import answer as bad_http

__all__ = ["module_proxy_factory"]

HTTPTOOLS = "proxy.http.bad_http.httptools:JsonErrorHttpToolsProtocol"
H11 = "proxy.http.bad_http.h11:JsonErrorH11Protocol"
PARSER = bad_http.CODE
APP = "invalid_header"  # h11 lets \x01 through; the app's own header check answers

# request bytes, and the expected code on (httptools, h11)
BODY = orjson.dumps({"model": "m1", "messages": MESSAGES})
POST = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
POST += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(BODY)
BAD_REQUESTS: dict[str, tuple[bytes, tuple[str, str]]] = {
    "control char in X-Agent": (POST + b"X-Agent: a\x01b\r\n\r\n" + BODY, (PARSER, APP)),
    "bare CR in X-Agent": (POST + b"X-Agent: a\rb\r\n\r\n" + BODY, (PARSER, PARSER)),
    "header without colon": (POST + b"X-Agent a\r\n\r\n" + BODY, (PARSER, PARSER)),
    "malformed request line": (b"GET /v1/models HTTP/1.1 extra\r\nHost: x\r\n\r\n", (PARSER, PARSER)),
    "garbage request line": (b"\x01\x02garbage\r\n\r\n", (PARSER, PARSER)),
}


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def raw_request(port: int, data: bytes) -> RawResponse:
    """Send ``data`` on a new connection; read until the server closes it (or 5 s pass)."""
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (h.partition(":") for h in lines)}
    return RawResponse(int(status_line.split()[1]), headers, body)


def assert_json_400(response: RawResponse, code: str) -> dict[str, Any]:
    """A complete OpenAI-shaped 400 with ``code``, closing the connection."""
    assert response.status == 400, response
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.body)
    error: dict[str, Any] = orjson.loads(response.body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["code"] == code
    assert error["param"] in (None, "X-Agent")
    assert isinstance(error["message"], str) and error["message"]
    assert b"\x01" not in response.body and b"\r" not in response.body
    return error


@pytest.fixture(scope="module", params=[HTTPTOOLS, H11])
def served(
    request: pytest.FixtureRequest, module_proxy_factory: ProxyFactory, _fake_upstream_session: FakeUpstream
) -> tuple[str, RunningProxy]:
    """(protocol, a proxy served with it), once per uvicorn protocol."""
    http: str = request.param
    return http, module_proxy_factory(basic_config(_fake_upstream_session), http=http)


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_unparseable_request_is_openai_shaped_400(
    served: tuple[str, RunningProxy], fake_upstream: FakeUpstream, case: str
) -> None:
    http, proxy = served
    port = int(proxy.url.rsplit(":", 1)[1])
    data, codes = BAD_REQUESTS[case]
    response = raw_request(port, data)
    assert_json_400(response, codes[http == H11])
    if codes[http == H11] == PARSER:
        assert response.headers["connection"] == "close"
        assert response.headers["server"] == "uvicorn"  # the server's default headers are kept
        assert "date" in response.headers
    after = httpx.post(
        f"{proxy.base_url}/chat/completions", json={"model": "m1", "messages": MESSAGES}, timeout=10
    )
    assert after.status_code == 200, after.text
    assert len(fake_upstream.bodies()) == 1  # only the good request went upstream


def test_auto_protocol_is_httptools() -> None:
    # uvicorn[standard] is a dependency, so `serve` runs httptools, as uvicorn's "auto" would
    assert bad_http.protocol() == HTTPTOOLS


@pytest.mark.parametrize("workers", [None, 2])
def test_serve_answers_unparseable_requests_with_json(
    tmp_path: Path, fake_upstream: FakeUpstream, redis_server: RedisServer, workers: int | None
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(basic_config(fake_upstream)), encoding="utf-8")
    env = {"REDIS_URL": redis_server.url}
    with ProxyProcess(config, workers=workers, env=env, cwd=tmp_path) as server:
        for _ in range(4):  # with --workers, connections spread over the processes
            data = BAD_REQUESTS["control char in X-Agent"][0]
            assert_json_400(raw_request(server.port, data), PARSER)
        models = httpx.get(f"{server.url}/v1/models", headers={"X-Agent": "ok"}, timeout=10)
    assert models.status_code == 200
    assert "m1" in {m["id"] for m in models.json()["data"]}
