"""Dashboard page weight and render time with 50 agents x 20 models of data.

    python bench/dashboard_render.py [--redis redis://127.0.0.1:6379/0] [--no-browser]

Fills the tracking backend and the posterior store with synthetic outcomes (3 hours of
per-minute traffic for every agent, contexts, workflows), serves the real app with uvicorn,
then prints: the bytes of each page's HTML and of the JS/CSS it loads; the server time of
each page and JSON twin (median of 5); and, with Chromium, the time until the charts are
drawn (navigation start to the last uPlot canvas).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from support.servers import UvicornThread  # noqa: E402

from policies.base import Decision, DecisionRequest  # noqa: E402
from proxy.app import create_app  # noqa: E402
from proxy.config.settings import parse_config  # noqa: E402
from proxy.forwarding.base import FailureKind, Summary, Usage  # noqa: E402
from proxy.pipeline.outcome import Attempt, Outcome, Status  # noqa: E402
from proxy.pipeline.router import Router  # noqa: E402
from proxy.tracking import timeline  # noqa: E402
from proxy.tracking.records import track  # noqa: E402
from proxy.tracking.redis_backend import RedisTracking  # noqa: E402
from storage.embedded.store import MemoryStore  # noqa: E402
from storage.redis.store import RedisStore  # noqa: E402

AGENTS, MODELS, MINUTES, PER_MINUTE = 50, 20, 180, 2
CONTEXTS = ("chat", "code", "math", "choice", "chat+json")


def config() -> dict[str, Any]:
    models = [
        {
            "model_name": f"model-{i:02d}",
            "litellm_params": {
                "model": f"openai/model-{i:02d}",
                "api_base": "http://127.0.0.1:9/v1",
                "api_key": "x",
            },
        }
        for i in range(MODELS)
    ]
    return {"model_list": models, "router": {"policy": "thompson", "half_life_s": None}}


def outcome(rng: random.Random, agent: int, at: float, n: int) -> Outcome:
    models = [f"model-{i:02d}" for i in range(MODELS)]
    ranking = tuple(rng.sample(models, 3))
    fails = rng.random() < 0.1
    attempts = [Attempt(ranking[0], FailureKind.SERVER, 0.2)] if fails else []
    attempts.append(Attempt(ranking[1] if fails else ranking[0], None, rng.uniform(0.1, 2.0), 0.05))
    request = DecisionRequest(f"agent-{agent:02d}", rng.choice(CONTEXTS), tuple(models))
    return Outcome(
        request_id=f"mm-{agent}-{n}",
        decision_request=request,
        decision=Decision(ranking, explored=False),
        snapshot={},
        workflow=f"wf-{agent}-{n // 40}",
        started_at=at,
        attempts=attempts,
        status=Status.SUCCESS,
        summary=Summary(text="ok", usage=Usage(100, 40)),
        cost_usd=0.0002,
        propensity=0.4,
    )


async def fill(store: Any, backend: Any, router: Any, now: float) -> int:
    """Synthetic outcomes for every agent and minute: the tracked records and store deltas the
    learner would write."""
    rng = random.Random(7)
    count = 0
    batch = []
    for agent in range(AGENTS):
        for minute in range(MINUTES):
            for k in range(PER_MINUTE):
                done = outcome(rng, agent, now - (MINUTES - minute) * 60 + k, count)
                rewards = {a.model: (0.0 if a.failure else rng.random()) for a in done.attempts}
                batch.append(timeline.stamped(track(done, rewards, 0.8, done.started_at), done, rewards))
                deltas = [
                    d
                    for m, r in rewards.items()
                    for d in router.policy_for(done.agent).deltas(done.decision_request, m, r)
                ]
                await store.apply(deltas)
                count += 1
            if len(batch) >= 500:
                await backend.write_many(batch)
                batch = []
    await backend.write_many(batch)
    return count


async def fill_redis(url: str, settings: Any, now: float) -> int:
    """Flush the Redis database, then fill it through a RedisStore and RedisTracking of our own."""
    store = RedisStore.from_url(url)
    await store.client.flushdb()
    backend = RedisTracking(
        store.client, prefix="mm", clock=time.time, retention_s=86400, decision_ttl_s=86400
    )
    count = await fill(store, backend, Router(settings), now)
    await backend.close()
    await store.close()
    return count


def timed(url: str, runs: int = 5) -> tuple[float, int]:
    samples, size = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        response = httpx.get(url, timeout=60)
        samples.append(time.perf_counter() - started)
        response.raise_for_status()
        size = len(response.content)
    return statistics.median(samples), size


def browser_times(base: str, paths: list[str]) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    out = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        for path in paths:
            samples = []
            for _ in range(3):
                page.goto(base + path)
                page.wait_for_load_state("load")
                samples.append(page.evaluate("performance.now()"))
            out[path] = statistics.median(samples)
        browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--redis", help="a Redis URL (flushed!) instead of the embedded store")
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    now = time.time()
    settings = parse_config(config())
    count = asyncio.run(fill_redis(args.redis, settings, now)) if args.redis else 0
    store: Any = MemoryStore() if args.redis is None else RedisStore.from_url(args.redis)
    app = create_app(settings, store=store)
    with UvicornThread(app) as server:
        if args.redis is None:  # the app's own objects; no request runs meanwhile
            state = app.state
            count = asyncio.run(fill(state.services.store, state.tracker.backend, state.services.router, now))
        print(
            f"{'redis' if args.redis else 'embedded'}: {count} outcomes, {AGENTS} agents x {MODELS} models, "
            f"{MINUTES} minutes"
        )
        paths = [
            "/dashboard",
            "/dashboard/agents/agent-07",
            "/dashboard/workflows",
            "/dashboard/workflows/wf-7-63",
        ]
        apis = [
            "/dashboard/api/overview",
            "/dashboard/api/agents/agent-07",
            "/dashboard/api/workflows",
            "/dashboard/api/workflows/wf-7-63",
        ]
        for path in [*paths, *apis]:
            seconds, size = timed(server.url + path)
            print(f"  {path:40s} {seconds * 1000:8.1f} ms  {size / 1024:7.1f} KB")
        for asset in (
            "dashboard.js",
            "dashboard.css",
            "vendor/uplot/uPlot.iife.min.js",
            "vendor/uplot/uPlot.min.css",
        ):
            size = len(httpx.get(f"{server.url}/dashboard/static/{asset}").content)
            print(f"  static/{asset:33s} {size / 1024:7.1f} KB")
        if not args.no_browser:
            for path, ms in browser_times(server.url, paths).items():
                print(
                    f"  chromium load {path:30s} {ms:8.1f} ms (navigation start to load event, median of 3)"
                )


if __name__ == "__main__":
    main()
