"""Decision kinds, explanations, decision records and logs through a real proxy, with the
official openai SDK as the client (the fast flow tests cover every kind in detail)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import yaml
from support.proxy_harness import ProxyFactory, basic_config, proxy_factory
from support.servers import FakeUpstream, ProxyProcess
from support.waiting import wait_for

__all__ = ["proxy_factory"]

MESSAGES = [{"role": "user", "content": "hello"}]
KINDS = {"sampled", "explored", "forced-try", "fallback", "pinned"}


def test_headers_explanation_and_record_right_after_the_response(
    proxy_factory: ProxyFactory, fake_upstream: FakeUpstream
) -> None:
    running = proxy_factory(basic_config(fake_upstream, ("m1", "m2")))
    fake_upstream.set_profile("m1", fail_status=503)
    with running.client("explained") as client:
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=MESSAGES, extra_headers={"X-Model-Manager-Explain": "true"}
        )
        plain = client.chat.completions.with_raw_response.create(model="auto", messages=MESSAGES)
    assert raw.headers["x-model-manager-model"] == "m2"
    assert raw.headers["x-model-manager-decision"] == "fallback"
    assert plain.headers["x-model-manager-decision"] in KINDS
    assert "x-model-manager-explain" not in plain.headers  # only on request
    explanation = json.loads(raw.headers["x-model-manager-explain"])
    assert explanation["kind"] == "fallback" and explanation["model"] == "m2"
    assert {c["model"] for c in explanation["candidates"]} == {"m1", "m2"}
    record = httpx.get(f"{running.url}/v1/requests/{raw.headers['x-request-id']}", timeout=5)
    assert record.status_code == 200, record.text  # at once: no sleep between answer and read
    body = record.json()
    assert (body["id"], body["agent"], body["model"]) == (raw.headers["x-request-id"], "explained", "m2")
    assert body["decision"] == "fallback"


def test_an_unknown_request_id_is_an_openai_shaped_404(
    proxy_factory: ProxyFactory, fake_upstream: FakeUpstream
) -> None:
    running = proxy_factory(basic_config(fake_upstream, ("m1",)))
    reply = httpx.get(f"{running.url}/v1/requests/mm-nope", timeout=5)
    assert reply.status_code == 404
    assert set(reply.json()["error"]) >= {"message", "type", "code"}


def test_json_logs_give_one_access_object_per_request(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    config = basic_config(fake_upstream, ("m1",))
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    json_logs = ["--log-format", "json"]
    with ProxyProcess(path, env={"REDIS_URL": ""}, extra_args=json_logs, cwd=tmp_path) as proxy:
        for agent in ("logged-a", "logged-b"):
            reply = httpx.post(
                f"{proxy.url}/v1/chat/completions",
                json={"model": "auto", "messages": MESSAGES},
                headers={"X-Agent": agent},
                timeout=30,
            )
            assert reply.status_code == 200

        def access_lines() -> list[dict[str, object]]:
            found = []
            for line in proxy.output().splitlines():
                if line.startswith("{"):
                    entry = json.loads(line)  # every JSON line parses
                    if entry.get("logger") == "model_manager.access":
                        found.append(entry)
            return found

        wait_for(lambda: len(access_lines()) == 2, timeout=10)
        lines = access_lines()
    assert {entry["agent"] for entry in lines} == {"logged-a", "logged-b"}
    for entry in lines:
        assert entry["model"] == "m1" and entry["status"] == "success" and entry["decision"] in KINDS


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_explain_values_other_than_yes_or_no_change_nothing(
    proxy_factory: ProxyFactory, fake_upstream: FakeUpstream, value: str
) -> None:
    running = proxy_factory(basic_config(fake_upstream, ("m1",)))
    with running.client("vague") as client:
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=MESSAGES, extra_headers={"X-Model-Manager-Explain": value}
        )
    assert raw.status_code == 200 and "x-model-manager-explain" not in raw.headers
