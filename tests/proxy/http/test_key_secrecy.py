"""No key string (master, client, an unknown one offered, the upstream's) appears in any byte a
full session produces: every response (headers and body, streams included), every log record,
and every Redis key name and DUMP."""

from __future__ import annotations

import contextlib
import logging
import subprocess
from collections.abc import Iterator

import httpx
import openai
import pytest
import redis
from support.redis_server import RedisServer
from support.scoped_keys import (
    ADMIN_A,
    CHAT_A,
    CLIENT_KEYS,
    LIMITED,
    LIMITED_RPM,
    MASTER,
    OPS,
    WRONG,
    keyed_config,
)
from support.servers import FakeUpstream
from support.tracking_support import MESSAGES, SECRET, Proxy, Starter, start_proxy

__all__ = ["start_proxy"]

SECRETS = {**CLIENT_KEYS, "unknown": WRONG, "upstream": SECRET}


@pytest.fixture
def backend() -> str:
    return "redis"


class Recording(httpx.HTTPTransport):
    """A transport that keeps every response's status line, headers and whole body."""

    def __init__(self, seen: list[bytes]) -> None:
        super().__init__()
        self.seen = seen

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        body = response.read()
        head = f"{response.status_code}\n" + "".join(f"{k}: {v}\n" for k, v in response.headers.items())
        self.seen.append(head.encode() + body)
        return httpx.Response(response.status_code, headers=response.headers, content=body, request=request)


@pytest.fixture
def proxy(
    start_proxy: Starter, fake_upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Proxy]:
    monkeypatch.setenv("MM_TEST_OPS_KEY", OPS)
    yield start_proxy(keyed_config(fake_upstream))


def session(proxy: Proxy, fake_upstream: FakeUpstream, seen: list[bytes]) -> None:
    """Chats (JSON, stream, an upstream failure, refusals), then every read endpoint."""
    http = httpx.Client(transport=Recording(seen), timeout=20)

    def sdk(key: str, agent: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=key, max_retries=0, http_client=http,
                             default_headers={"X-Agent": agent, "X-Workflow": "wf-secrecy"})

    chat = sdk(CHAT_A, "team-a-writer")
    chat.chat.completions.create(model="m1", messages=MESSAGES)
    for _ in chat.chat.completions.create(model="auto", messages=MESSAGES, stream=True):
        pass
    fake_upstream.script("m1", [{"fail_status": 503}])
    sdk(OPS, "team-b-writer").chat.completions.create(model="m1", messages=MESSAGES)
    sdk(MASTER, "team-b-writer").responses.create(model="m1", input="hi")
    limited = sdk(LIMITED, "x")
    refusals = [
        lambda: sdk(CHAT_A, "team-b-writer").chat.completions.create(model="m1", messages=MESSAGES),
        lambda: chat.chat.completions.create(model="m2", messages=MESSAGES),
        lambda: sdk(WRONG, "team-a-writer").chat.completions.create(model="m1", messages=MESSAGES),
        lambda: sdk(ADMIN_A, "team-a-writer").chat.completions.create(model="m1", messages=MESSAGES),
        *[lambda: limited.chat.completions.create(model="m1", messages=MESSAGES)] * (LIMITED_RPM + 1),
    ]
    for refused in refusals:
        with contextlib.suppress(openai.APIStatusError):
            refused()
    proxy.wait_recorded(4)
    for key in (MASTER, ADMIN_A, OPS, WRONG):
        auth = {"Authorization": f"Bearer {key}"}
        for path in ("/v1/stats", "/v1/workflows?agent=team-a-writer", "/v1/workflows/wf-secrecy", "/metrics",
                     "/ready", "/openapi.json", "/dashboard", "/dashboard/api/overview",
                     "/dashboard/agents/team-a-writer"):
            http.get(proxy.url + path, headers=auth)
        http.post(proxy.url + "/v1/chat/completions", headers=auth, content=b"{not json")
    for key in (OPS, ADMIN_A, WRONG):
        http.cookies.clear()
        http.post(proxy.url + "/dashboard/login", data={"key": key, "next": "/dashboard"})
        http.get(proxy.url + "/dashboard")  # with the session cookie when signed in
    http.close()


def redis_bytes(server: RedisServer) -> list[bytes]:
    """Every key name (``redis-cli --scan``) and its DUMP, uncompressed."""
    names = subprocess.run(["redis-cli", "-p", str(server.port), "--scan"], check=True, capture_output=True)
    with redis.Redis.from_url(server.url) as client:
        client.config_set("rdbcompression", "no")
        try:
            dumps = [client.dump(name) or b"" for name in names.stdout.splitlines()]
        finally:
            client.config_set("rdbcompression", "yes")
    return [names.stdout, *dumps]


def test_no_key_in_any_response_log_or_redis_dump(
    proxy: Proxy, fake_upstream: FakeUpstream, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[bytes] = []
    with caplog.at_level(logging.DEBUG):
        session(proxy, fake_upstream, seen)
    logs = caplog.text.encode() + b"".join(repr(r.__dict__).encode() for r in caplog.records)
    stored = redis_bytes(redis_server)
    places = {"responses": b"\n".join(seen), "logs": logs, "redis": b"\n".join(stored)}
    assert len(seen) > 40 and b"team-a-writer" in places["redis"] and b"team-a-writer" in places["responses"]
    assert b"'chat-a'" in places["responses"]  # key ids are named; the keys are not
    assert b"rate_limit_exceeded" in places["responses"] and b"permission_denied" in places["responses"]
    leaks = [(name, where) for name, key in SECRETS.items() for where, blob in places.items()
             if key.encode() in blob]
    assert leaks == []
