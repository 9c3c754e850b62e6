"""The proxy app under a real uvicorn, pointed at the fake upstream, with SDK clients.

``start_proxy(config_dict)`` (the ``proxy_factory`` fixture) serves ``create_app`` on a free
port and returns a RunningProxy: its URL, its Services, the outcomes the learner recorded
(with each attempted model's reward) and ready-made openai clients.
"""

from __future__ import annotations

import importlib
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from proxy.app import create_app
from proxy.config.settings import parse_config
from proxy.http.bad_http import answer as bad_http
from proxy.pipeline.cooldowns import Cooldowns
from proxy.pipeline.learning import Scored
from proxy.pipeline.outcome import Outcome
from proxy.pipeline.services import Services
from proxy.runtime.state import embedded_state
from storage.embedded.store import MemoryStore
from support.servers import FakeUpstream, UvicornThread

# litellm loaded once, up front: timings not import-bound
importlib.import_module("proxy.forwarding.litellm_upstream")

SECRET = "sk-test-secret-123456"
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hello"}]
Recorded = tuple[Outcome, dict[str, float]]


def model_entry(name: str, api_base: str, upstream_model: str | None = None, **info: Any) -> dict[str, Any]:
    """One ``model_list`` entry: ``name`` forwarded as ``openai/<upstream_model>`` to ``api_base``."""
    entry: dict[str, Any] = {
        "model_name": name,
        "litellm_params": {
            "model": f"openai/{upstream_model or name}",
            "api_base": api_base,
            "api_key": SECRET,
        },
    }
    if info:
        entry["model_info"] = info
    return entry


def basic_config(
    upstream: FakeUpstream,
    models: Sequence[str] = ("m1", "m2"),
    *,
    path: str = "direct",
    **sections: Any,
) -> dict[str, Any]:
    """Models on the fake upstream, fixed (config order) policy, ``sections`` merged in.

    ``path`` "direct" forwards OpenAI-wire bytes over aiohttp; "litellm" calls litellm.
    """
    router = {
        "policy": "fixed",
        "max_attempts": 3,
        "attempt_timeout_s": 5,
        "first_chunk_timeout_s": 5,
        "direct_forwarding": path == "direct",
    }
    config: dict[str, Any] = {
        "model_list": [model_entry(name, upstream.url) for name in models],
        "router": {**router, **sections.pop("router", {})},
    }
    config.update(sections)
    return config


@dataclass
class RunningProxy:
    """A proxy app served by uvicorn in a thread."""

    url: str
    services: Services
    store: MemoryStore
    recorded: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def reset(self) -> None:
        """Forget recorded outcomes and cooldowns (between tests sharing this proxy), once every
        outcome already submitted is recorded (so none lands in the next test's list)."""
        learner = self.services.learner
        deadline = time.monotonic() + 5.0
        while learner.recorded < learner.submitted:
            assert time.monotonic() < deadline, "earlier outcomes were never recorded"
            time.sleep(0.005)
        with self.lock:
            self.recorded.clear()
        self.services.cooldowns = Cooldowns()

    async def hook(self, scored: Scored) -> None:
        """Learner hook: keep every recorded outcome with its rewards."""
        with self.lock:
            self.recorded.append((scored.outcome, dict(scored.rewards)))

    def outcomes(self, count: int = 1, timeout: float = 5.0) -> list[Recorded]:
        """Wait until at least ``count`` outcomes were recorded; returns them all."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if len(self.recorded) >= count:
                    return list(self.recorded)
            assert time.monotonic() < deadline, f"{len(self.recorded)} outcomes recorded, wanted {count}"
            time.sleep(0.01)

    def last(self, timeout: float = 5.0) -> Recorded:
        """The only outcome of a test that sent one request."""
        recorded = self.outcomes(1, timeout)
        assert len(recorded) == 1, [o.request_id for o, _ in recorded]
        return recorded[0]

    def client(self, agent: str | None = "a", **options: Any) -> openai.OpenAI:
        """A sync openai client on this proxy (no SDK retries)."""
        return openai.OpenAI(**self._client_options(agent, options))

    def async_client(self, agent: str | None = "a", **options: Any) -> openai.AsyncOpenAI:
        """An async openai client on this proxy (no SDK retries)."""
        return openai.AsyncOpenAI(**self._client_options(agent, options))

    def _client_options(self, agent: str | None, options: Mapping[str, Any]) -> dict[str, Any]:
        headers = {"X-Agent": agent} if agent is not None else {}
        merged: dict[str, Any] = {
            "base_url": self.base_url,
            "api_key": "unused",
            "max_retries": 0,
            "timeout": 20.0,
            "default_headers": headers,
        }
        merged.update(options)
        return merged

    def post(
        self, body: Any = None, *, headers: Mapping[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        """POST /v1/chat/completions with raw httpx (``body`` as JSON, or ``content=``)."""
        if body is not None:
            kw["json"] = body
        return httpx.post(f"{self.base_url}/chat/completions", headers=dict(headers or {}), timeout=20, **kw)


ProxyFactory = Callable[..., RunningProxy]


def _factory(stack: ExitStack) -> ProxyFactory:
    """A ``start(config_dict, seed=0, http=...)`` whose proxies stop when ``stack`` closes.

    ``http`` is uvicorn's HTTP protocol; by default the one ``model-manager serve`` uses.
    """

    def start(config: Mapping[str, Any], *, seed: int = 0, http: str | None = None) -> RunningProxy:
        store = MemoryStore()
        parsed = parse_config(dict(config))
        app = create_app(parsed, state=embedded_state(parsed, time.time, store), rng=random.Random(seed))
        server = stack.enter_context(UvicornThread(app, http=http or bad_http.protocol()))
        services: Services = app.state.services
        proxy = RunningProxy(server.url, services, store)
        services.learner.hooks.append(proxy.hook)
        return proxy

    return start


@pytest.fixture
def proxy_factory() -> Iterator[ProxyFactory]:
    """``start(config_dict, seed=0)`` -> RunningProxy; every proxy stops at test end."""
    with ExitStack() as stack:
        yield _factory(stack)


@pytest.fixture(scope="module")
def module_proxy_factory() -> Iterator[ProxyFactory]:
    """Like proxy_factory, for proxies shared by a module's tests (outcomes accumulate)."""
    with ExitStack() as stack:
        yield _factory(stack)


FORWARDING_PATHS = ("direct", "litellm")


@pytest.fixture(scope="module", params=FORWARDING_PATHS)
def path(request: pytest.FixtureRequest) -> str:
    """Each forwarding path in turn: direct (aiohttp) and litellm."""
    value: str = request.param
    return value


@pytest.fixture(scope="module")
def _shared_proxy(
    module_proxy_factory: ProxyFactory, _fake_upstream_session: FakeUpstream, path: str
) -> RunningProxy:
    return module_proxy_factory(basic_config(_fake_upstream_session, path=path))


@pytest.fixture
def proxy(_shared_proxy: RunningProxy, fake_upstream: FakeUpstream) -> RunningProxy:
    """Models m1, m2 (fixed order) on the fake upstream, once per forwarding path.

    Shared by a module's tests: recorded outcomes and 429 cooldowns are cleared for each test.
    """
    _shared_proxy.reset()
    return _shared_proxy


@pytest.fixture
def direct_proxy(proxy_factory: ProxyFactory, fake_upstream: FakeUpstream) -> RunningProxy:
    """A proxy with models m1, m2 (fixed order), direct forwarding only."""
    return proxy_factory(basic_config(fake_upstream))
