"""Hot reload end to end: POST /admin/reload and SIGHUP on a real server over the fake upstream."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from support.proxy_harness import model_entry
from support.servers import FakeUpstream, ProxyProcess, UvicornThread
from support.waiting import wait_for

from proxy.app import create_app
from proxy.config.settings import load_config
from proxy.http.bad_http import answer as bad_http
from proxy.runtime.state import embedded_state
from storage.embedded.store import MemoryStore

MESSAGES: list[Any] = [{"role": "user", "content": "Say hello"}]
MASTER_KEY = "sk-master-reload-1"
PIN = {"X-Model-Manager-Pin": "true"}


def write_config(path: Path, upstream: FakeUpstream, models: list[str], **sections: Any) -> None:
    config: dict[str, Any] = {
        "model_list": [model_entry(name, upstream.url) for name in models],
        "router": {
            "policy": "thompson",
            "max_attempts": 3,
            "attempt_timeout_s": 5,
            **sections.pop("router", {}),
        },
        **sections,
    }
    path.write_text(yaml.safe_dump(config))


@dataclass
class Served:
    url: str
    path: Path

    def reload(self, key: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.post(f"{self.url}/admin/reload", headers=headers, timeout=30)


@pytest.fixture
def served(tmp_path: Path, fake_upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    """create_app over config.yaml (m1, m2) with reload_from that file, under real uvicorn."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    path = tmp_path / "config.yaml"
    write_config(path, fake_upstream, ["m1", "m2"])
    config = load_config(path)
    state = embedded_state(config, time.time, MemoryStore())
    app = create_app(config, state=state, rng=random.Random(0), reload_from=partial(load_config, path))
    with UvicornThread(app, http=bad_http.protocol()) as server:
        yield Served(server.url, path)


@dataclass(frozen=True)
class Call:
    started: float
    model: str | None
    error: str | None


async def _traffic(url: str, stop: asyncio.Event, calls: list[Call], workers: int = 4) -> None:
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)

    async def loop() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                raw = await client.chat.completions.with_raw_response.create(
                    model="auto", messages=MESSAGES, extra_headers={"X-Agent": "load"}
                )
                calls.append(Call(started, raw.headers.get("x-model-manager-model"), None))
            except openai.APIError as exc:
                calls.append(Call(started, None, repr(exc)))

    await asyncio.gather(*(loop() for _ in range(workers)))
    await client.close()


async def _until(calls: list[Call], count: int) -> None:
    while len(calls) < count:  # noqa: ASYNC110 (the traffic task appends; no event to wait on)
        await asyncio.sleep(0.01)


async def test_reload_under_load_adds_and_removes_models(served: Served, fake_upstream: FakeUpstream) -> None:
    calls: list[Call] = []
    stop = asyncio.Event()
    traffic = asyncio.create_task(_traffic(served.url, stop, calls))
    await _until(calls, 30)
    write_config(served.path, fake_upstream, ["m2", "m3"])
    response = await asyncio.to_thread(served.reload)
    reloaded_at = time.monotonic()
    before = len(calls)
    await _until(calls, before + 60)
    stop.set()
    await traffic

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["added"], body["removed"], body["models"]) == (["m3"], ["m1"], ["m2", "m3"])
    assert [c.error for c in calls if c.error] == []
    assert {c.model for c in calls if c.started < reloaded_at} >= {"m1"}
    after = [c.model for c in calls if c.started > reloaded_at]
    assert "m3" in after
    assert "m1" not in after
    assert await asyncio.to_thread(_models, served.url) == ["m2", "m3", "auto"]


async def test_in_flight_request_finishes_on_its_config(served: Served, fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_profile("m1", latency_ms=1500)
    client = openai.AsyncOpenAI(base_url=f"{served.url}/v1", api_key="unused", max_retries=0)
    slow = asyncio.create_task(
        client.chat.completions.with_raw_response.create(model="m1", messages=MESSAGES, extra_headers=PIN)
    )
    await asyncio.to_thread(wait_for, lambda: any(b["model"] == "m1" for b in fake_upstream.bodies()))
    write_config(served.path, fake_upstream, ["m2"])
    response = await asyncio.to_thread(served.reload)
    answered = await slow
    with pytest.raises(openai.NotFoundError) as gone:
        await client.chat.completions.create(model="m1", messages=MESSAGES, extra_headers=PIN)
    await client.close()
    assert response.json()["removed"] == ["m1"]
    assert answered.headers["x-model-manager-model"] == "m1"
    assert answered.parse().choices[0].message.content
    assert "m1" in str(gone.value)


def test_bad_file_keeps_the_running_config(served: Served, fake_upstream: FakeUpstream) -> None:
    write_config(served.path, fake_upstream, ["m1", "m2"], router={"exploration_rate": 7})
    response = served.reload()
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_config"
    assert error["param"] == "router.exploration_rate"
    assert "router.exploration_rate" in error["message"]
    client = openai.OpenAI(base_url=f"{served.url}/v1", api_key="unused", max_retries=0)
    answer = client.chat.completions.with_raw_response.create(
        model="m1", messages=MESSAGES, extra_headers=PIN
    )
    assert answer.headers["x-model-manager-model"] == "m1"
    models = [m["id"] for m in httpx.get(f"{served.url}/v1/models").json()["data"]]
    assert models == ["m1", "m2", "auto"]


def test_reload_needs_the_master_key(tmp_path: Path, fake_upstream: FakeUpstream) -> None:
    path = tmp_path / "config.yaml"
    write_config(path, fake_upstream, ["m1"], server={"master_key": MASTER_KEY})
    config = load_config(path)
    app = create_app(
        config, state=embedded_state(config, time.time, MemoryStore()), reload_from=partial(load_config, path)
    )
    with UvicornThread(app) as server:
        served = Served(server.url, path)
        write_config(path, fake_upstream, ["m1", "m2"], server={"master_key": MASTER_KEY})
        refused = served.reload()
        wrong = served.reload("sk-wrong")
        accepted = served.reload(MASTER_KEY)
    assert (refused.status_code, wrong.status_code) == (401, 401)
    assert refused.json()["error"]["code"] == "invalid_api_key"
    assert accepted.status_code == 200
    assert accepted.json()["added"] == ["m2"]


def test_restart_bound_settings_are_reported(
    served: Served, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    write_config(
        served.path, fake_upstream, ["m1", "m2"], server={"state_file": str(tmp_path / "other.json")}
    )
    body = served.reload().json()
    assert body["reloaded"] is True
    assert body["restart_required"] == ["server.state_file"]


def _models(url: str) -> list[str]:
    return [m["id"] for m in httpx.get(f"{url}/v1/models", timeout=5).json()["data"]]


def test_sighup_reloads_a_served_process(tmp_path: Path, fake_upstream: FakeUpstream) -> None:
    path = tmp_path / "config.yaml"
    write_config(path, fake_upstream, ["m1"], server={"state_file": str(tmp_path / "state.json")})
    with ProxyProcess(path, env={"REDIS_URL": ""}) as proxy:
        path.write_text("model_list: [{model_name: broken}]\n")
        assert proxy.process is not None
        proxy.process.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload rejected" in proxy.output(), timeout=20)
        assert _models(proxy.url) == ["m1", "auto"]
        write_config(path, fake_upstream, ["m1", "m2"], server={"state_file": str(tmp_path / "state.json")})
        proxy.process.send_signal(signal.SIGHUP)
        wait_for(lambda: _models(proxy.url) == ["m1", "m2", "auto"], timeout=20)
        assert proxy.process.poll() is None
        assert "model_list[0]" in proxy.output()


def _all_workers_list(url: str, expected: list[str], tries: int = 20) -> bool:
    """``expected`` from ``tries`` fresh connections in a row (each may reach another worker)."""
    return all(_models(url) == expected for _ in range(tries))


def test_reload_restarts_every_worker(tmp_path: Path, fake_upstream: FakeUpstream, redis_server: Any) -> None:
    path = tmp_path / "config.yaml"
    write_config(path, fake_upstream, ["m1"])
    with ProxyProcess(path, workers=2, env={"REDIS_URL": redis_server.url}, startup_timeout=120) as proxy:
        served = Served(proxy.url, path)
        path.write_text("model_list: [{model_name: broken}]\n")
        bad = served.reload()
        write_config(path, fake_upstream, ["m1", "m2"])
        restarting = served.reload()
        wait_for(lambda: _all_workers_list(proxy.url, ["m1", "m2", "auto"]), timeout=120, interval=0.5)
        assert proxy.process is not None and proxy.process.poll() is None
    assert bad.status_code == 400
    assert bad.json()["error"]["param"].startswith("model_list[0]")
    assert restarting.status_code == 202
    assert restarting.json()["restarting_workers"] is True
    assert restarting.json()["added"] == ["m2"]
