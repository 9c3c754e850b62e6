"""Helpers for the tracking tests: proxies on MemoryStore, RedisStore or the SQLite database, SDK
calls, polling."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from policies.base import ALL_PROMPTS, Evidence, Table
from policies.evidence_tables import EvidenceTables
from proxy.app import create_app
from proxy.config.settings import Config, parse_config
from proxy.pipeline.services import Services
from proxy.runtime.state import State, embedded_state, redis_state, sqlite_state
from storage.embedded.sqlite_store import SqliteStore
from storage.embedded.store import MemoryStore
from storage.redis.store import RedisStore
from support.redis_server import RedisServer
from support.redis_targets import RedisTarget
from support.servers import FakeUpstream, UvicornThread

SECRET = "sk-test-secret-123456"
MESSAGES: list[dict[str, Any]] = [{"role": "user", "content": "Say hello"}]
AnyStore = MemoryStore | RedisStore | SqliteStore


def config_dict(
    upstream: FakeUpstream, models: Sequence[str] = ("m1", "m2"), **sections: Any
) -> dict[str, Any]:
    """Models on the fake upstream; fixed policy, no decay; ``sections`` merged over."""
    router = {
        "policy": "fixed",
        "max_attempts": 3,
        "attempt_timeout_s": 5,
        "first_chunk_timeout_s": 5,
        "half_life_s": None,
        "propensity_samples": 0,
    }
    entries = [{"model_name": m, "litellm_params": _params(m, upstream.url)} for m in models]
    return {"model_list": entries, **sections, "router": {**router, **sections.get("router", {})}}


def _params(model: str, api_base: str) -> dict[str, str]:
    return {"model": f"openai/{model}", "api_base": api_base, "api_key": SECRET}


@dataclass
class Proxy:
    """A running proxy app: URL, services, and its store."""

    url: str
    services: Services
    store: AnyStore
    redis: RedisTarget | None = None

    def client(self, agent: str, workflow: str | None = None, **headers: str) -> openai.OpenAI:
        """An openai SDK client with X-Agent (and X-Workflow) headers, no retries."""
        default = {"X-Agent": agent, **headers}
        if workflow is not None:
            default["X-Workflow"] = workflow
        return openai.OpenAI(
            base_url=f"{self.url}/v1", api_key="unused", max_retries=0, timeout=20, default_headers=default
        )

    def wait_recorded(self, count: int, timeout: float = 10.0) -> None:
        """Poll until the learner recorded ``count`` outcomes (hooks included)."""
        deadline = time.monotonic() + timeout
        while self.services.learner.recorded < count:
            assert time.monotonic() < deadline, f"recorded {self.services.learner.recorded} < {count}"
            time.sleep(0.01)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        if body is not None:
            kw["json"] = body
        return httpx.post(self.url + path, timeout=10, **kw)

    def evidence(self, scope: str, model: str, context: str = ALL_PROMPTS) -> Evidence:
        """The stored evidence of one cell, read through the store on the app's loop."""
        table = Table(scope, context)
        if isinstance(self.store, EvidenceTables):
            return self.store.load_now([table], [model])[table][model]
        assert self.redis is not None, "a Proxy on Redis needs its RedisTarget"
        return _redis_evidence(self.store, self.redis, scope, model, context)


def _redis_evidence(store: RedisStore, target: RedisTarget, scope: str, model: str, context: str) -> Evidence:
    from storage.redis.keys import fields, post_key

    with target.client() as client:
        s, f, _ = client.hmget(post_key(store.prefix, Table(scope, context)), list(fields(model)))
    return Evidence(float(s or 0.0), float(f or 0.0))


Starter = Callable[..., Proxy]
BACKENDS = ["memory", "redis", "redis-cluster", "sqlite"]
"""In-process memory, a real redis-server, a real Redis Cluster (three masters), and the
embedded SQLite database (the default without Redis)."""


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each tracking backend in turn (see BACKENDS)."""
    value: str = request.param
    return value


def redis_target_of(request: pytest.FixtureRequest, backend: str) -> RedisTarget | None:
    """The (emptied) Redis of ``backend``, or None for the embedded store."""
    if backend == "redis":
        return RedisTarget(request.getfixturevalue("redis_server").url, cluster=False)
    if backend == "redis-cluster":
        return RedisTarget(request.getfixturevalue("redis_cluster").url, cluster=True)
    return None


@pytest.fixture
def start_proxy(request: pytest.FixtureRequest, backend: str) -> Iterator[Starter]:
    """``start(config_dict, clock=time.time)`` -> Proxy on the ``backend`` store."""
    target = redis_target_of(request, backend)
    folder: Path | None = request.getfixturevalue("tmp_path") if backend == "sqlite" else None
    with ExitStack() as stack:

        def start(config: Mapping[str, Any], *, clock: Callable[[], float] = time.time) -> Proxy:
            parsed = parse_config(dict(config))
            if folder is not None:
                state = sqlite_state(parsed, clock, folder / "state.json")  # shared, like one Redis
                store: AnyStore = state.posteriors  # type: ignore[assignment]
            else:
                store = make_store(target, clock)
                state = state_on(parsed, store, clock)
            app = create_app(parsed, state=state, rng=random.Random(0), clock=clock)
            server = stack.enter_context(UvicornThread(app))
            return Proxy(server.url, app.state.services, store, target)

        yield start


def state_on(
    config: Config, store: MemoryStore | RedisStore, clock: Callable[[], float] = time.time
) -> State:
    """The app's State on ``store`` (embedded or Redis, as the store is)."""
    if isinstance(store, MemoryStore):
        return embedded_state(config, clock, store)
    return redis_state(config, clock, store)


def make_store(
    redis: RedisServer | RedisTarget | None, clock: Callable[[], float]
) -> MemoryStore | RedisStore:
    """A store without decay: RedisStore on ``redis`` (a server or a target), else MemoryStore."""
    if redis is None:
        return MemoryStore(clock=clock)
    target = redis if isinstance(redis, RedisTarget) else RedisTarget(redis.url, cluster=False)
    return target.store(clock=clock, socket_timeout=2.0, connect_timeout=2.0)


def chat(client: openai.OpenAI, model: str = "auto") -> tuple[str, str, Any]:
    """One completion: (x-request-id, answering model, usage); raises on an error status."""
    raw = client.chat.completions.with_raw_response.create(model=model, messages=MESSAGES)
    reply = raw.parse()
    return raw.headers["x-request-id"], raw.headers["x-model-manager-model"], reply.usage


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    """An OpenAI-shaped error with ``status`` (and ``code``)."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "code"}
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
