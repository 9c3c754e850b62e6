"""The scope matrix against a real server: each key x each endpoint, allowed or refused
(401 without a known key, 403 ``permission_denied`` outside its scopes), with the official
openai SDK for the model endpoints and httpx for the others."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator

import httpx
import openai
import pytest
from support.scoped_keys import ADMIN_A, CHAT_A, MASTER, OPS, WRONG, keyed_config
from support.servers import FakeUpstream, UvicornThread

from proxy.app import create_app
from proxy.config.settings import parse_config
from proxy.runtime.state import embedded_state
from storage.embedded.store import MemoryStore

AGENT = "team-a-writer"
Call = Callable[[str, str | None], int]


@pytest.fixture(scope="module")
def url(_fake_upstream_session: FakeUpstream) -> Iterator[str]:
    """One proxy with the master key and the client keys, for every case of the matrix."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MM_TEST_OPS_KEY", OPS)
        config = parse_config(keyed_config(_fake_upstream_session))
    app = create_app(config, state=embedded_state(config, time.time, MemoryStore()), rng=random.Random(0))
    with UvicornThread(app) as server:
        yield server.url


def sdk_status(action: Callable[[openai.OpenAI], object], method: str, path: str) -> Call:
    """The status of ``action`` through the SDK (httpx when there is no key to give it)."""

    def call(url: str, key: str | None) -> int:
        if key is None:
            return http_status(method, path, {"model": "m1", "input": "hi"})(url, None)
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=20,
                               default_headers={"X-Agent": AGENT})
        try:
            action(client)
        except openai.APIStatusError as error:
            return error.status_code
        return 200

    return call


def http_status(method: str, path: str, body: object = None) -> Call:
    def call(url: str, key: str | None) -> int:
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        headers["X-Agent"] = AGENT
        response = httpx.request(method, url + path, json=body, headers=headers, timeout=10)
        if response.status_code in (401, 403):
            error = response.json()["error"]
            assert error["code"] in ("invalid_api_key", "permission_denied") and error["message"], error
        return response.status_code

    return call


ENDPOINTS: dict[str, tuple[str, Call]] = {
    "chat": ("chat", sdk_status(lambda c: c.chat.completions.create(
        model="m1", messages=[{"role": "user", "content": "hi"}]), "POST", "/v1/chat/completions")),
    "responses": ("chat", sdk_status(lambda c: c.responses.create(model="m1", input="hi"),
                                     "POST", "/v1/responses")),
    "embeddings": ("chat", http_status("POST", "/v1/embeddings", {"model": "auto", "input": "hi"})),
    "models": ("chat", sdk_status(lambda c: c.models.list(), "GET", "/v1/models")),
    "stats": ("agent-admin", http_status("GET", f"/v1/stats?agent={AGENT}")),
    "workflows": ("agent-admin", http_status("GET", f"/v1/workflows?agent={AGENT}")),
    "feedback": ("agent-admin", http_status("POST", "/v1/feedback", {"request_id": "mm-none", "score": 1})),
    "requests": ("agent-admin", http_status("GET", "/v1/requests/mm-none")),
    "metrics": ("global-admin", http_status("GET", "/metrics")),
    "ready": ("global-admin", http_status("GET", "/ready")),
    "openapi": ("global-admin", http_status("GET", "/openapi.json")),
    "dashboard": ("global-admin", http_status("GET", "/dashboard/api/overview")),
}
KEYS: dict[str, tuple[str | None, frozenset[str]]] = {
    "master": (MASTER, frozenset({"chat", "agent-admin", "global-admin"})),
    "chat-a": (CHAT_A, frozenset({"chat"})),
    "admin-a": (ADMIN_A, frozenset({"agent-admin"})),
    "ops": (OPS, frozenset({"chat", "agent-admin", "global-admin"})),
    "wrong": (WRONG, frozenset()),
    "none": (None, frozenset()),
}
"""Key name -> (key, the endpoint kinds it reaches)."""


SUCCEEDS = {"chat", "responses", "models", "stats", "workflows", "metrics", "ready", "openapi", "dashboard"}
"""Endpoints that answer 200 when allowed (the others answer 400/404 for their made-up input)."""


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("key_name", list(KEYS))
def test_scope_matrix(url: str, key_name: str, endpoint: str) -> None:
    """Allowed: 200 (or the handler's own 400/404 for a made-up id); refused: 401 for no or an
    unknown key (and on the dashboard, which asks to sign in), 403 ``permission_denied`` else."""
    key, reaches = KEYS[key_name]
    kind, call = ENDPOINTS[endpoint]
    status = call(url, key)
    if kind in reaches:
        assert status == 200 if endpoint in SUCCEEDS else status in (400, 404), status
    elif key is None or key == WRONG or endpoint == "dashboard":
        assert status == 401
    else:
        assert status == 403


def test_health_is_open(url: str) -> None:
    assert httpx.get(url + "/health").status_code == 200
