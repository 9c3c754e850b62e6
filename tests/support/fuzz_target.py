"""A real proxy for fuzzing: create_app under uvicorn on Redis or the embedded store, with a
fingerprint of everything stored so a test can tell whether a request wrote anything.

``fuzz_target(kind, upstream_url, redis_url=..., state_dir=...)`` yields a FuzzTarget; its
``settled_state()`` waits until every write already submitted has landed, then returns the
fingerprint: the learner's submitted count plus, on Redis, the key count and a SHA-1 of every
key's DUMP (one Lua call), or, embedded, the posterior dump and the tracking endpoints' answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis

from proxy.app import create_app
from proxy.config.settings import parse_config
from proxy.http.bad_http import answer as bad_http
from proxy.pipeline.ready_counters import write_counters
from proxy.pipeline.services import Services
from proxy.runtime.state import State
from proxy.tracking.tracker import Tracker
from support.proxy_harness import model_entry
from support.servers import UvicornThread

KEY = "sk-fuzz-master"
AUTH = {"Authorization": f"Bearer {KEY}"}
MAX_BODY = 64 * 1024
KINDS = ("redis", "embedded")
SETTLE_TIMEOUT_S = 10.0
DIGEST_SCRIPT = """
local keys = redis.call('KEYS', '*')
table.sort(keys)
local parts = {}
for _, key in ipairs(keys) do
  parts[#parts + 1] = key
  parts[#parts + 1] = redis.call('DUMP', key)
end
return {#keys, redis.sha1hex(table.concat(parts, '\\0'))}
"""


def fuzz_config(upstream_url: str, *, redis_url: str | None, state_dir: Path) -> dict[str, Any]:
    """Models m1, m2 on the fake upstream, a master key, a small body limit, no decay (so a dump
    does not change with time), Redis or a state file."""
    config: dict[str, Any] = {
        "model_list": [model_entry(name, upstream_url) for name in ("m1", "m2")],
        "router": {"policy": "fixed", "max_attempts": 2, "attempt_timeout_s": 5, "half_life_s": 0},
        "server": {
            "master_key": KEY,
            "max_body_bytes": MAX_BODY,
            "state_file": str(state_dir / "state.json"),
        },
        "groups": {"both": ["m1", "m2"]},
    }
    if redis_url is not None:
        config["redis"] = {"url": redis_url}
    return config


@dataclass
class FuzzTarget:
    """A running proxy and the means to fingerprint its stored state."""

    kind: str
    url: str
    services: Services
    tracker: Tracker
    state: State
    redis_client: redis.Redis | None
    http: httpx.Client
    loop: asyncio.AbstractEventLoop

    def settle(self) -> None:
        """Wait until every submitted outcome is recorded and no write is pending."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while not self._settled():
            if time.monotonic() > deadline:
                raise AssertionError(f"writes never settled: {self._counters()}")
            time.sleep(0.002)

    def _counters(self) -> dict[str, Any]:
        return write_counters(self.state.counters(), self.services.learner)

    def _settled(self) -> bool:
        counters = self._counters()
        learner = counters["learner"]
        pending = counters["store"].get("pending", 0) + counters["tracking"].get("pending", 0)
        return bool(learner["submitted"] == learner["recorded"] and pending == 0)

    def settled_state(self) -> tuple[object, ...]:
        """The fingerprint of everything stored, once writes have settled."""
        self.settle()
        submitted = self.services.learner.submitted
        if self.redis_client is not None:
            count, digest = self.redis_client.eval(DIGEST_SCRIPT, 0)  # type: ignore[misc]
            return (submitted, count, digest)
        dump = self.loop.run_until_complete(self.services.store.dump())  # type: ignore[attr-defined]
        stats = self.http.get("/v1/stats").content
        workflows = self.http.get("/v1/workflows", params={"limit": 1000}).content
        return (submitted, repr(dump), stats, workflows)

    def redis_keys(self) -> list[str]:
        """Every Redis key (for a finding's detail); empty when embedded."""
        if self.redis_client is None:
            return []
        return sorted(k.decode() for k in self.redis_client.keys("*"))


@contextlib.contextmanager
def fuzz_target(
    kind: str, upstream_url: str, *, redis_url: str | None, state_dir: Path
) -> Iterator[FuzzTarget]:
    """The proxy on ``kind`` ("redis" needs ``redis_url``) under uvicorn, until the block ends."""
    config = fuzz_config(upstream_url, redis_url=redis_url if kind == "redis" else None, state_dir=state_dir)
    app = create_app(parse_config(config))
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(UvicornThread(app, http=bad_http.protocol()))
        client = None
        if kind == "redis":
            assert redis_url is not None
            client = stack.enter_context(redis.Redis.from_url(redis_url))
        http = stack.enter_context(httpx.Client(base_url=server.url, headers=AUTH, timeout=30))
        loop = asyncio.new_event_loop()
        stack.callback(loop.close)
        yield FuzzTarget(
            kind, server.url, app.state.services, app.state.tracker, app.state.stored, client, http, loop
        )
