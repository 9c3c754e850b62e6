"""A client key stays within its agents, models and rate: chats for other agents or models are
403 ``permission_denied``, an admin key limited to some agents sees only theirs in stats,
workflows, feedback and decision records, a key over its rpm gets 429 with Retry-After, and the
dashboard signs in any admin key for every agent (the session bound to the key id)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest
from support.scoped_keys import ADMIN_A, CHAT_A, LIMITED, LIMITED_RPM, MASTER, OPS, keyed_config
from support.servers import FakeUpstream
from support.tracking_support import MESSAGES, Proxy, Starter, assert_error, start_proxy

__all__ = ["start_proxy"]


@pytest.fixture
def backend() -> str:
    return "memory"


@pytest.fixture
def proxy(
    start_proxy: Starter, fake_upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Proxy]:
    monkeypatch.setenv("MM_TEST_OPS_KEY", OPS)
    yield start_proxy(keyed_config(fake_upstream))


def client(proxy: Proxy, key: str, agent: str, workflow: str | None = None) -> openai.OpenAI:
    headers = {"X-Agent": agent, **({"X-Workflow": workflow} if workflow else {})}
    return openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=key, max_retries=0, timeout=20,
                         default_headers=headers)


def get(proxy: Proxy, key: str, path: str) -> httpx.Response:
    return httpx.get(proxy.url + path, headers={"Authorization": f"Bearer {key}"}, timeout=10)


def post(proxy: Proxy, key: str, path: str, body: object) -> httpx.Response:
    return httpx.post(proxy.url + path, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10)


def test_a_chat_key_is_refused_other_agents_and_models(proxy: Proxy) -> None:
    own = client(proxy, CHAT_A, "team-a-writer")
    assert own.chat.completions.create(model="m1", messages=MESSAGES).choices[0].message.content
    assert own.chat.completions.create(model="auto", messages=MESSAGES).choices[0].message.content
    cases = [(client(proxy, CHAT_A, "team-b-writer"), "m1", "agent"), (own, "m2", "model")]
    for other, model, param in cases:
        with pytest.raises(openai.PermissionDeniedError) as caught:
            other.chat.completions.create(model=model, messages=MESSAGES)
        body = caught.value.response.json()["error"]
        assert (body["code"], body["param"]) == ("permission_denied", param)
    with pytest.raises(openai.PermissionDeniedError):
        client(proxy, CHAT_A, "team-b-writer").responses.create(model="m1", input="hi")
    proxy.wait_recorded(2)
    stats = get(proxy, MASTER, "/v1/stats").json()
    assert [row["agent"] for row in stats["agents"]] == ["team-a-writer"]  # refused: no trace
    assert [m.id for m in own.models.list()] == ["m1", "auto"]


def test_an_admin_key_sees_only_its_agents(proxy: Proxy) -> None:
    ids = {}
    for agent in ("team-a-writer", "team-b-writer"):
        raw = client(proxy, OPS, agent, workflow=f"wf-{agent}").chat.completions.with_raw_response.create(
            model="m1", messages=MESSAGES)
        ids[agent] = raw.headers["x-request-id"]
    proxy.wait_recorded(2)
    everyone = get(proxy, OPS, "/v1/stats").json()
    assert sorted(row["agent"] for row in everyone["agents"]) == ["team-a-writer", "team-b-writer"]
    own = get(proxy, ADMIN_A, "/v1/stats").json()
    assert [row["agent"] for row in own["agents"]] == ["team-a-writer"]
    assert get(proxy, ADMIN_A, "/v1/stats?agent=team-a-writer").status_code == 200
    listed = get(proxy, ADMIN_A, "/v1/workflows?agent=team-a-writer").json()["data"]
    assert [row["id"] for row in listed] == ["wf-team-a-writer"]
    assert get(proxy, ADMIN_A, "/v1/workflows/wf-team-a-writer").status_code == 200
    assert get(proxy, ADMIN_A, f"/v1/requests/{ids['team-a-writer']}").status_code == 200
    credited = post(proxy, ADMIN_A, "/v1/feedback", {"request_id": ids["team-a-writer"], "score": 1})
    assert credited.status_code == 200
    refused = [
        get(proxy, ADMIN_A, "/v1/stats?agent=team-b-writer"),
        get(proxy, ADMIN_A, "/v1/workflows?agent=team-b-writer"),
        get(proxy, ADMIN_A, "/v1/workflows"),
        get(proxy, ADMIN_A, "/v1/workflows/wf-team-b-writer"),
        get(proxy, ADMIN_A, f"/v1/requests/{ids['team-b-writer']}"),
        post(proxy, ADMIN_A, "/v1/feedback", {"request_id": ids["team-b-writer"], "score": 0}),
        post(proxy, ADMIN_A, "/v1/feedback", {"workflow_id": "wf-team-b-writer", "score": 0}),
        post(proxy, ADMIN_A, "/v1/workflows/wf-team-b-writer/finish", {"outcome": "failure"}),
        get(proxy, ADMIN_A, "/metrics"),
    ]
    for response in refused:
        assert_error(response, 403, "permission_denied")
    summary = get(proxy, OPS, "/v1/workflows/wf-team-b-writer").json()
    assert not summary["finished"]  # the refused finish wrote nothing
    assert get(proxy, OPS, f"/v1/requests/{ids['team-a-writer']}").json()["score"] == 1
    assert get(proxy, OPS, f"/v1/requests/{ids['team-b-writer']}").json()["score"] is None  # nor feedback


def test_a_key_over_its_rpm_gets_429_with_retry_after(proxy: Proxy) -> None:
    limited = client(proxy, LIMITED, "any-agent")
    for _ in range(LIMITED_RPM):
        limited.chat.completions.create(model="m1", messages=MESSAGES)
    with pytest.raises(openai.RateLimitError) as caught:
        limited.chat.completions.create(model="m1", messages=MESSAGES)
    response = caught.value.response
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert client(proxy, OPS, "any-agent").chat.completions.create(model="m1", messages=MESSAGES).choices


def test_the_dashboard_signs_in_admin_keys_for_every_agent(proxy: Proxy) -> None:
    for key, status in ((OPS, 303), (MASTER, 303), (ADMIN_A, 401), (CHAT_A, 401)):
        form = {"key": key, "next": "/dashboard"}
        answer = httpx.post(proxy.url + "/dashboard/login", data=form, timeout=10)
        assert answer.status_code == status, key
        if status == 303:
            cookie = answer.cookies["mm_dashboard"]
            assert key not in cookie
            key_id = "ops" if key == OPS else "master"
            assert cookie.split(".")[2] == key_id
            jar = {"mm_dashboard": cookie}
            overview = httpx.get(proxy.url + "/dashboard/api/overview", cookies=jar, timeout=10)
            assert overview.status_code == 200


def test_a_key_with_models_is_routed_only_among_them(proxy: Proxy, fake_upstream: FakeUpstream) -> None:
    """chat-a lists m1 (and auto): when m1 fails, the fallback does not reach m2 for it (it does
    for a key without a list)."""
    fake_upstream.script("m1", [{"fail_status": 503}, {"fail_status": 503}])
    with pytest.raises(openai.APIStatusError) as caught:
        client(proxy, CHAT_A, "team-a-writer").chat.completions.create(model="auto", messages=MESSAGES)
    assert caught.value.status_code == 502
    assert [body["model"] for body in fake_upstream.bodies()] == ["m1"]
    raw = client(proxy, OPS, "team-a-writer").chat.completions.with_raw_response.create(
        model="auto", messages=MESSAGES)
    assert raw.headers["x-model-manager-model"] == "m2"
