"""A real proxy on a redis-server that stops mid-run: requests served during the outage show
up in stats, workflows and decision records exactly once after Redis returns."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import redis
from redis_server import RedisServer
from servers import FakeUpstream, UvicornThread
from tracking_support import Proxy, assert_error, chat, config_dict, make_store

from proxy.app import create_app
from proxy.config import parse_config
from proxy.tracking.redis_backend import RedisTracking


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_requests_during_outage_are_tracked_once_after_recovery(
    own_redis_server: RedisServer, fake_upstream: FakeUpstream
) -> None:
    store = make_store(own_redis_server, time.time)
    app = create_app(parse_config(config_dict(fake_upstream)), store=store, rng=random.Random(0))
    with UvicornThread(app) as server:
        proxy = Proxy(server.url, app.state.services, store)
        assert proxy.services.tracker is not None
        tracking = proxy.services.tracker.backend
        assert isinstance(tracking, RedisTracking)
        with proxy.client("agent-o", "wf-o") as client:
            ids = [chat(client)[0] for _ in range(2)]
            proxy.wait_recorded(2)
            own_redis_server.stop()
            ids += [chat(client)[0] for _ in range(3)]  # still served (fixed policy)
            proxy.wait_recorded(5)
            assert tracking.pending > 0
            assert_error(proxy.get("/v1/stats?agent=agent-o"), 500)  # reads answer, as before
            own_redis_server.start()
            wait_for(lambda: tracking.pending == 0)  # the retry task, no new request needed
        row = proxy.get("/v1/stats?agent=agent-o").json()["agents"][0]["models"][0]
        workflow = proxy.get("/v1/workflows/wf-o").json()
        assert tracking.dropped_updates == 0
    assert (row["calls"], row["successes"], row["decisions"]) == (5, 5, 5)
    assert workflow["requests"] == 5
    with redis.Redis.from_url(own_redis_server.url) as direct:
        assert direct.lrange("mm:wf:{wf-o}:reqs", 0, -1) == [i.encode() for i in ids]
        assert all(direct.exists(f"mm:req:{i}") for i in ids)
