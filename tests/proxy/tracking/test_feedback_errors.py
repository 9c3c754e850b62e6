"""Every bad input to the tracking endpoints gets an OpenAI-shaped 4xx; the master key guards them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from support.servers import FakeUpstream
from support.tracking_support import Proxy, Starter, assert_error, backend, chat, config_dict, start_proxy

__all__ = ["backend", "start_proxy"]

BAD_FEEDBACK: list[tuple[bytes, int, str]] = [
    (b"not json", 400, "invalid_json"),
    (b"[1, 2]", 400, "invalid_json"),
    (b'{"request_id": "mm-1", "score": NaN}', 400, "invalid_json"),
    (b"{}", 400, "invalid_feedback"),
    (b'{"score": 0.5}', 400, "invalid_feedback"),
    (b'{"request_id": "mm-1", "workflow_id": "wf", "score": 0.5}', 400, "invalid_feedback"),
    (b'{"request_id": "mm-1"}', 400, "invalid_score"),
    (b'{"request_id": "mm-1", "score": null}', 400, "invalid_score"),
    (b'{"request_id": "mm-1", "score": "0.5"}', 400, "invalid_score"),
    (b'{"request_id": "mm-1", "score": true}', 400, "invalid_score"),
    (b'{"request_id": "mm-1", "score": 1.5}', 400, "invalid_score"),
    (b'{"request_id": "mm-1", "score": -0.1}', 400, "invalid_score"),
    (b'{"request_id": "mm-1", "score": 1e400}', 400, "invalid_json"),
    (b'{"request_id": 42, "score": 0.5}', 400, "invalid_request"),
    (b'{"request_id": "bad id!", "score": 0.5}', 400, "invalid_request"),
    (b'{"workflow_id": "{x}", "score": 0.5}', 400, "invalid_request"),
    (b'{"request_id": "mm-1", "score": 0.5, "extra": 1}', 400, "invalid_request"),
    (b'{"request_id": "mm-unknown", "score": 0.5}', 404, "not_found"),
    (b'{"workflow_id": "wf-unknown", "score": 0.5}', 404, "not_found"),
]


@pytest.fixture
def proxy(start_proxy: Starter, fake_upstream: FakeUpstream) -> Proxy:
    return start_proxy(config_dict(fake_upstream))


@pytest.mark.parametrize(("body", "status", "code"), BAD_FEEDBACK)
def test_bad_feedback_bodies(proxy: Proxy, body: bytes, status: int, code: str) -> None:
    response = proxy.post("/v1/feedback", content=body, headers={"content-type": "application/json"})
    assert_error(response, status, code)


BAD_READS: list[tuple[str, str, int]] = [
    ("GET", "/v1/workflows/wf-unknown", 404),
    ("GET", "/v1/workflows/bad%20id", 400),
    ("GET", "/v1/workflows?agent=bad%20agent", 400),
    ("GET", "/v1/workflows?limit=0", 400),
    ("GET", "/v1/workflows?limit=many", 400),
    ("GET", "/v1/stats?agent=%7Bx%7D", 400),
    ("POST", "/v1/workflows/wf-unknown/finish", 404),
]


@pytest.mark.parametrize(("method", "path", "status"), BAD_READS)
def test_bad_reads_and_unknown_ids(proxy: Proxy, method: str, path: str, status: int) -> None:
    assert_error(httpx.request(method, proxy.url + path, timeout=10), status)


@pytest.mark.parametrize(
    "body",
    [{"outcome": 3}, {"outcome": "no spaces allowed"}, {"outcome": "success", "score": 2}, {"why": "x"}],
)
def test_bad_finish_bodies(proxy: Proxy, body: dict[str, Any]) -> None:
    with proxy.client("a", "wf-ok") as client:
        chat(client)
    proxy.wait_recorded(1)
    assert_error(proxy.post("/v1/workflows/wf-ok/finish", body), 400)
    assert_error(proxy.post("/v1/workflows/wf-ok/finish", content=b"{"), 400, "invalid_json")
    assert not proxy.get("/v1/workflows/wf-ok").json()["finished"]


def test_stats_of_an_unseen_agent_is_empty(proxy: Proxy) -> None:
    body = proxy.get("/v1/stats", params={"agent": "nobody"}).json()
    assert body == {"object": "stats", "agents": [{"agent": "nobody", "requests": 0, "models": []}]}


@pytest.mark.parametrize("backend", ["memory"])
def test_master_key_guards_tracking_endpoints(start_proxy: Starter, fake_upstream: FakeUpstream) -> None:
    proxy = start_proxy({**config_dict(fake_upstream), "server": {"master_key": "sk-master"}})
    guarded = [
        ("GET", "/v1/stats", None),
        ("GET", "/v1/workflows", None),
        ("GET", "/v1/workflows/wf", None),
        ("POST", "/v1/workflows/wf/finish", {"outcome": "success"}),
        ("POST", "/v1/feedback", {"request_id": "mm-1", "score": 1}),
    ]
    for method, path, body in guarded:
        assert_error(httpx.request(method, proxy.url + path, json=body, timeout=10), 401, "invalid_api_key")
        wrong = {"Authorization": "Bearer nope"}
        assert_error(httpx.request(method, proxy.url + path, json=body, headers=wrong, timeout=10), 401)
    key = {"Authorization": "Bearer sk-master"}
    assert httpx.get(proxy.url + "/v1/stats", headers=key, timeout=10).status_code == 200
    assert httpx.get(proxy.url + "/v1/workflows", headers=key, timeout=10).status_code == 200
    assert httpx.get(proxy.url + "/health", timeout=10).status_code == 200
