"""Health probes: a model whose upstream's GET /models fails leaves routing until it recovers."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import openai
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from support.proxy_harness import basic_config, model_entry
from support.servers import FakeUpstream, UvicornThread
from support.waiting import wait_for

from proxy.app import create_app
from proxy.config.settings import parse_config
from proxy.runtime.state import embedded_state
from proxy.simulator.app import create_simulator_app
from storage.embedded.store import MemoryStore


@dataclass
class Switch:
    down: bool = False


@pytest.fixture
def flaky() -> Iterator[tuple[str, Switch]]:
    """A simulator whose GET /v1/models answers 503 while ``switch.down``."""
    switch = Switch()

    async def models(request: Request) -> Response:
        if switch.down:
            return JSONResponse({"error": {"message": "down"}}, status_code=503)
        return JSONResponse({"object": "list", "data": [{"id": "m2", "object": "model"}]})

    app = Starlette(routes=[Route("/v1/models", models), Mount("/", app=create_simulator_app(seed=0))])
    with UvicornThread(app) as server:
        yield f"{server.url}/v1", switch


def _ready(url: str) -> dict[str, str]:
    unhealthy: dict[str, str] = httpx.get(f"{url}/ready").json()["unhealthy_models"]
    return unhealthy


def test_unhealthy_model_is_skipped_until_it_recovers(
    fake_upstream: FakeUpstream, flaky: tuple[str, Switch]
) -> None:
    flaky_url, switch = flaky
    raw = basic_config(fake_upstream, ["m1"], router={"policy": "fixed"}, server={"health_interval_s": 0.2})
    raw["model_list"].insert(0, model_entry("m2", flaky_url))  # config order: m2 first
    config = parse_config(raw)
    app = create_app(config, state=embedded_state(config, time.time, MemoryStore()), rng=random.Random(0))
    with UvicornThread(app) as server:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)

        def answered_by() -> tuple[str, str]:
            raw = client.chat.completions.with_raw_response.create(
                model="auto", messages=[{"role": "user", "content": "hi"}]
            )
            return raw.headers["x-model-manager-model"], raw.headers["x-model-manager-attempts"]

        assert answered_by() == ("m2", "1")
        switch.down = True
        wait_for(lambda: "m2" in _ready(server.url), timeout=10)
        assert "HTTP 503" in _ready(server.url)["m2"]
        assert {answered_by() for _ in range(5)} == {("m1", "1")}
        switch.down = False
        wait_for(lambda: _ready(server.url) == {}, timeout=10)
        assert answered_by() == ("m2", "1")
