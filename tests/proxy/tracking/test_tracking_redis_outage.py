"""A real proxy on a redis-server that stops (or hangs) mid-run: requests served during the
outage show up in stats, workflows and decision records exactly once after Redis returns, and
the tracking endpoints answer an OpenAI-shaped 503 meanwhile."""

from __future__ import annotations

import logging
import os
import random
import signal
import time
from collections.abc import Callable

import httpx
import pytest
import redis
from support.redis_server import RedisServer
from support.servers import FakeUpstream, UvicornThread
from support.tracking_support import Proxy, assert_error, chat, config_dict, make_store, state_on
from support.waiting import wait_for

from proxy.app import create_app
from proxy.config.settings import parse_config
from proxy.tracking.redis_backend import RedisTracking


def test_requests_during_outage_are_tracked_once_after_recovery(
    own_redis_server: RedisServer, fake_upstream: FakeUpstream
) -> None:
    store = make_store(own_redis_server, time.time)
    parsed = parse_config(config_dict(fake_upstream))
    app = create_app(parsed, state=state_on(parsed, store), rng=random.Random(0))
    with UvicornThread(app) as server:
        proxy = Proxy(server.url, app.state.services, store)
        tracking = app.state.tracker.backend
        assert isinstance(tracking, RedisTracking)
        with proxy.client("agent-o", "wf-o") as client:
            ids = [chat(client)[0] for _ in range(2)]
            proxy.wait_recorded(2)
            own_redis_server.stop()
            ids += [chat(client)[0] for _ in range(3)]  # still served (fixed policy)
            proxy.wait_recorded(5)
            assert tracking.pending > 0
            assert_error(proxy.get("/v1/stats?agent=agent-o"), 503, "tracking_unavailable")
            down = proxy.get("/ready")
            writes = down.json()["writes"]
            assert down.status_code == 503 and down.json()["status"] == "degraded"
            assert writes["tracking"] == {
                    "pending": tracking.pending,
                    "dropped_updates": 0,
                    "record_bytes": tracking.writer.record_bytes,
                    "record_bytes_limit": 64 * 1024 * 1024,
                    "overflowed_records": 0,
                }
            learner = {"submitted": 5, "recorded": 5, "failed_writes": 0, "hook_failures": 0}
            assert writes["learner"] == learner  # the store buffers: no posterior write failed
            assert writes["store"]["pending"] == store.pending
            own_redis_server.start()
            wait_for(lambda: tracking.pending == 0)  # the retry task, no new request needed
            wait_for(lambda: store.pending == 0)
            up = proxy.get("/ready").json()
            assert up["status"] == "ready" and up["writes"]["tracking"]["pending"] == 0
            assert up["writes"]["store"]["pending"] == 0
        row = proxy.get("/v1/stats?agent=agent-o").json()["agents"][0]["models"][0]
        workflow = proxy.get("/v1/workflows/wf-o").json()
        assert tracking.dropped_updates == 0
    assert (row["calls"], row["successes"], row["decisions"]) == (5, 5, 5)
    assert workflow["requests"] == 5
    with redis.Redis.from_url(own_redis_server.url) as direct:
        assert direct.lrange("mm:wf:{wf-o}:reqs", 0, -1) == [i.encode() for i in ids]
        assert all(direct.exists(f"mm:req:{i}") for i in ids)


def tracking_calls(request_id: str) -> dict[str, Callable[[Proxy], httpx.Response]]:
    """Every tracking endpoint, called on workflow wf-u and ``request_id``."""
    return {
        "stats": lambda p: p.get("/v1/stats"),
        "agent stats": lambda p: p.get("/v1/stats?agent=agent-u"),
        "workflows": lambda p: p.get("/v1/workflows"),
        "workflow": lambda p: p.get("/v1/workflows/wf-u"),
        "finish": lambda p: p.post("/v1/workflows/wf-u/finish", {"outcome": "success"}),
        "request feedback": lambda p: p.post("/v1/feedback", {"request_id": request_id, "score": 0.5}),
        "workflow feedback": lambda p: p.post("/v1/feedback", {"workflow_id": "wf-u", "score": 0.5}),
        "metrics": lambda p: p.get("/metrics"),
    }


def test_tracking_endpoints_answer_503_while_redis_is_down(
    own_redis_server: RedisServer, fake_upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    store = make_store(own_redis_server, time.time)
    parsed = parse_config(config_dict(fake_upstream))
    app = create_app(parsed, state=state_on(parsed, store), rng=random.Random(0))
    with UvicornThread(app) as server:
        proxy = Proxy(server.url, app.state.services, store)
        with proxy.client("agent-u", "wf-u") as client:
            request_id = chat(client)[0]
        proxy.wait_recorded(1)
        calls = tracking_calls(request_id)
        wait_for(lambda: proxy.get("/v1/workflows/wf-u").status_code == 200)  # written
        own_redis_server.stop()
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            down = {name: call(proxy) for name, call in calls.items()}
        outage_logs = list(caplog.records)
        own_redis_server.start()
        back = {name: call(proxy) for name, call in calls.items()}
    for name, response in down.items():
        assert_error(response, 503, "tracking_unavailable")
        assert response.headers["content-type"] == "application/json", name
        assert response.headers["retry-after"] == "1", name
        error = response.json()["error"]
        assert (error["type"], error["param"]) == ("server_error", None), name
        assert error["message"].startswith("tracking store unavailable: Redis"), error
        assert str(own_redis_server.port) not in error["message"], error  # no address leaked
    warned = [r for r in outage_logs if r.name == "model_manager.tracking"]
    assert len(warned) == len(calls)
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in warned)
    assert [r for r in outage_logs if r.levelno >= logging.ERROR] == []  # no "unhandled error"
    assert {name: r.status_code for name, r in back.items()} == dict.fromkeys(calls, 200)


def test_a_hung_redis_is_a_503_too(
    own_redis_server: RedisServer, fake_upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    store = make_store(own_redis_server, time.time)  # socket timeout 2 s
    parsed = parse_config(config_dict(fake_upstream))
    app = create_app(parsed, state=state_on(parsed, store), rng=random.Random(0))
    assert own_redis_server.process is not None
    pid = own_redis_server.process.pid
    with UvicornThread(app) as server:
        proxy = Proxy(server.url, app.state.services, store)
        assert proxy.get("/v1/workflows").status_code == 200  # the pooled connection exists
        os.kill(pid, signal.SIGSTOP)  # accepts nothing, answers nothing: a timeout
        try:
            with caplog.at_level(logging.WARNING):
                hung = proxy.get("/v1/workflows")
        finally:
            os.kill(pid, signal.SIGCONT)
        after = proxy.get("/v1/workflows")
    assert_error(hung, 503, "tracking_unavailable")
    assert "Timeout" in hung.json()["error"]["message"]
    assert any("TimeoutError" in r.getMessage() for r in caplog.records if r.name == "model_manager.tracking")
    assert after.status_code == 200
