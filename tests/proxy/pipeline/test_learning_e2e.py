"""Learning end to end: real uvicorn + create_app, the fake upstream, the openai SDK, real Redis.

Every test sends requests one at a time and waits until the learner has recorded each one
before sending the next, so a run is a fixed sequence: the policy RNG is seeded
(``create_app(rng=random.Random(seed))``), the fake upstream's failure draws are seeded
(reset per test), and rewards are exactly 1 or 0 (reward weight on quality only, and the
simulator's answers score quality 1). The thresholds below are not tuned to one lucky seed:
each comment gives the distribution of the asserted figure over many seeds, measured with
the same policy and store in process (no HTTP), so a failure means a behaviour change.

Agents A and B have opposite experience. The fake upstream's profiles are per model, so
they get different (but symmetric) model lists: for A the first model ``a-one`` is good and
``a-two`` fails half its calls; for B the first model ``b-one`` is the bad one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import redis
import yaml
from openai.types.chat import ChatCompletionMessageParam
from support.proxy_harness import model_entry
from support.redis_server import RedisServer  # tests/ is on sys.path (rootdir conftest)
from support.redis_targets import RedisTarget
from support.servers import FakeUpstream, UvicornThread
from support.waiting import wait_for

from policies.base import POOLED, Table
from policies.thompson import ThompsonPolicy
from proxy.app import create_app
from proxy.config.settings import parse_config
from proxy.pipeline.learning import Scored
from proxy.pipeline.outcome import Outcome
from proxy.pipeline.services import Services
from storage.redis import keys
from storage.redis.store import RedisStore

MODEL_HEADER = "x-model-manager-model"
GOOD = {"A": "a-one", "B": "b-two"}
BAD = {"A": "a-two", "B": "b-one"}
AGENT_MODELS = {"A": ("a-one", "a-two"), "B": ("b-one", "b-two")}
FAST = {"latency_ms": 1, "ttft_ms": 1, "chunk_interval_ms": 1}
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hello"}]
CONTEXT = "chat"  # the prompt context of MESSAGES
Recorded = tuple[Outcome, dict[str, float]]





# -- a served proxy ---------------------------------------------------------------------------
@dataclass
class Served:
    """A proxy app under uvicorn; the learner hook keeps every outcome with its rewards."""

    url: str
    services: Services
    recorded: list[Recorded] = field(default_factory=list)
    scored: list[Scored] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    clients: dict[str, openai.OpenAI] = field(default_factory=dict)

    async def hook(self, scored: Scored) -> None:
        with self.lock:
            self.recorded.append((scored.outcome, dict(scored.rewards)))
            self.scored.append(scored)

    def client(self, agent: str) -> openai.OpenAI:
        if agent not in self.clients:
            self.clients[agent] = openai.OpenAI(
                base_url=f"{self.url}/v1",
                api_key="unused",
                max_retries=0,
                timeout=20.0,
                default_headers={"X-Agent": agent},
            )
        return self.clients[agent]

    def ask(self, agent: str, *, may_fail: bool = False) -> str | None:
        """One chat completion as ``agent``; waits until it is learned; the answering model.

        A 502 (every attempted model failed) is an error unless ``may_fail``; it answers None.
        """
        before = self.services.learner.recorded
        completions = self.client(agent).chat.completions
        try:
            raw = completions.with_raw_response.create(model="auto", messages=MESSAGES)
        except openai.APIStatusError as error:
            assert may_fail and error.status_code == 502, error
            self.wait_recorded(before + 1)
            return None
        assert raw.status_code == 200
        self.wait_recorded(before + 1)
        return raw.headers[MODEL_HEADER]

    def wait_recorded(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.services.learner.recorded < count:
            assert time.monotonic() < deadline, f"{self.services.learner.recorded} recorded, wanted {count}"
            time.sleep(0.0002)

    def outcomes(self, agent: str) -> list[Recorded]:
        with self.lock:
            return [(o, r) for o, r in self.recorded if o.agent == agent]

    def choices(self, agent: str) -> list[str]:
        """The policy's first choice of every request of ``agent``, in order."""
        return [o.decision.choice for o, _ in self.outcomes(agent)]

    def ready(self) -> httpx.Response:
        return httpx.get(f"{self.url}/ready", timeout=5.0)


@contextlib.contextmanager
def serve(
    config: Mapping[str, Any], *, seed: int, clock: Callable[[], float] = time.time
) -> Iterator[Served]:
    """``create_app(parse_config(config))`` under uvicorn; the store is built from config."""
    app = create_app(parse_config(dict(config)), rng=random.Random(seed), clock=clock)
    with UvicornThread(app) as server:
        services: Services = app.state.services
        served = Served(server.url, services)
        services.learner.hooks.append(served.hook)
        try:
            yield served
        finally:
            for client in served.clients.values():
                client.close()


def learning_config(
    upstream: FakeUpstream, tmp_path: Path, models: Sequence[str], **router: Any
) -> dict[str, Any]:
    """Thompson routing over ``models``; agents A and B restricted to their own models."""
    return {
        "model_list": [model_entry(name, upstream.url) for name in models],
        "agents": {agent: {"models": list(ms)} for agent, ms in AGENT_MODELS.items() if ms[0] in models},
        "router": {
            "policy": "thompson",
            "max_attempts": 2,
            "attempt_timeout_s": 5,
            "first_chunk_timeout_s": 5,
            "half_life_s": None,
            "reward": {"quality": 1.0, "latency": 0.0, "cost": 0.0},
            **router,
        },
        "server": {"state_file": str(tmp_path / "state.json")},
    }


def opposite_agents(upstream: FakeUpstream) -> list[str]:
    """Profiles: each agent's good model always answers, its bad one fails half its calls."""
    for agent in AGENT_MODELS:
        upstream.set_profile(GOOD[agent], **FAST)
        upstream.set_profile(BAD[agent], **FAST, failure_rate=0.5, fail_status=503)
    return [m for ms in AGENT_MODELS.values() for m in ms]


def share(items: Sequence[str | None], model: str) -> float:
    return sum(item == model for item in items) / len(items)


def learn(
    served: Served, rounds: int, agents: Sequence[str] = ("A", "B"), *, may_fail: bool = False
) -> dict[str, list[str | None]]:
    """``rounds`` requests per agent, interleaved; the answering model of each (None: 502)."""
    answered: dict[str, list[str | None]] = {agent: [] for agent in agents}
    for _ in range(rounds):
        for agent in agents:
            answered[agent].append(served.ask(agent, may_fail=may_fail))
    return answered


def agent_evidence(served: Served, agent: str) -> dict[str, tuple[float, float]]:
    """Per model: (sum of rewards, sum of 1 - reward) over the agent's recorded attempts."""
    totals: dict[str, tuple[float, float]] = {}
    for _, rewards in served.outcomes(agent):
        for model, r in rewards.items():
            s, f = totals.get(model, (0.0, 0.0))
            totals[model] = (s + r, f + 1.0 - r)
    return totals


# -- (a) two agents learn opposite preferences ------------------------------------------------
def test_each_agent_learns_its_own_best_model(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    """300 requests per agent: in the last 100, >= 85% of each agent's first choices (and so
    of the answers, fallback included) go to its good model, and they are opposite models.

    Margin: over 1000 seeded in-process runs of this exact setup (exploration 0.02,
    fallback on, good p=1.0, bad p=0.5) the first-choice share in the last 100 had
    minimum 0.94, 1st percentile 0.96, median 0.99. A random router would be near 0.5.
    """
    config = learning_config(fake_upstream, tmp_path, opposite_agents(fake_upstream))
    with serve(config, seed=1) as served:
        answered = learn(served, 300)
        for agent in ("A", "B"):
            first = served.choices(agent)
            assert len(first) == 300
            assert share(first[-100:], GOOD[agent]) >= 0.85, (agent, first[-100:])
            assert share(answered[agent][-100:], GOOD[agent]) >= share(first[-100:], GOOD[agent])
            assert {m for o, _ in served.outcomes(agent) for m in o.decision.ranking} == set(
                AGENT_MODELS[agent]
            )
    sent = fake_upstream.stats()
    assert sent[BAD["A"]]["errors"] > 0 and sent[BAD["B"]]["errors"] > 0


# -- (b, d) learned state survives a restart: Redis and the embedded state file -----------------
def stats_cli(config: Mapping[str, Any], tmp_path: Path, agent: str, redis_url: str | None) -> Any:
    """``model-manager stats --config FILE --agent AGENT --json`` as a subprocess."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(dict(config)), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    command = [sys.executable, "-m", "proxy", "stats", "--config", str(path), "--agent", agent, "--json"]
    done = subprocess.run(command, capture_output=True, env=env, timeout=60, check=False, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


UNFORGETTING = {"policy_options": {"choice_discount": 0.0, "change_memory": 0.0}}
"""For checks that compare stored evidence with the exact sum of rewards learnt: no forgetting."""


def check_restart(config: dict[str, Any], tmp_path: Path, redis_url: str | None) -> None:
    """Learn, stop, start a new app on the same state; it routes to the good model at once."""
    with serve(config, seed=2) as first:
        learn(first, 150)
        learned = {agent: agent_evidence(first, agent) for agent in ("A", "B")}
    with serve(config, seed=3) as second:
        answered = learn(second, 20)
        for agent in ("A", "B"):
            # A store that forgot would route ~50/50: P(>= 17 of 20 | p = 0.5) = 0.0013.
            # Remembered (good ~Beta(150,1), bad ~Beta(5,5)): P(bad) ~ 0.02 per request.
            assert share(second.choices(agent), GOOD[agent]) >= 0.85, second.choices(agent)
            assert share(answered[agent], GOOD[agent]) >= 0.85
            seen = second.outcomes(agent)[0][0].snapshot[Table(agent)]
            for model, (s, f) in learned[agent].items():
                assert (seen[model].successes, seen[model].failures) == (s, f)
    rows = stats_cli(config, tmp_path, "A", redis_url)
    by_model = {row["model"]: row for row in rows}
    assert set(by_model) == set(AGENT_MODELS["A"])
    both = agent_evidence(first, "A")
    for model, (s, f) in agent_evidence(second, "A").items():
        both[model] = (both[model][0] + s, both[model][1] + f)
    scale = ThompsonPolicy().evidence_scale  # the default; agents share no models: no pooled prior
    for model, (s, f) in both.items():
        row = by_model[model]  # the posterior the policy samples: Beta(1, 1) + scale x evidence
        assert (row["alpha"], row["beta"]) == (round(1.0 + scale * s, 3), round(1.0 + scale * f, 3))
        assert row["decisions"] == round(s + f, 2)
    assert by_model[GOOD["A"]]["mean"] > 0.9 > by_model[BAD["A"]]["mean"]


def test_redis_state_survives_a_proxy_restart(
    fake_upstream: FakeUpstream, redis_target: RedisTarget, tmp_path: Path
) -> None:
    """On a single Redis and on a Redis Cluster (``redis.cluster: true``; REDIS_URL names a node)."""
    config = learning_config(fake_upstream, tmp_path, opposite_agents(fake_upstream), **UNFORGETTING)
    config["redis"] = redis_target.config()
    check_restart(config, tmp_path, redis_target.url)
    assert not (tmp_path / "state.json").exists()  # Redis, not the embedded store


def test_state_file_survives_a_proxy_restart(
    fake_upstream: FakeUpstream, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    config = learning_config(fake_upstream, tmp_path, opposite_agents(fake_upstream), **UNFORGETTING)
    check_restart(config, tmp_path, None)
    assert (tmp_path / "state.db").exists() and not (tmp_path / "state.json").exists()


# -- (c) Redis outage mid-run ------------------------------------------------------------------
def redis_totals(url: str, table: Table) -> float:
    """Sum of successes + failures over every model of ``table``, read from Redis directly."""
    with redis.Redis.from_url(url, decode_responses=True) as client:
        cells = client.hgetall(keys.post_key("mm", table))
    return sum(float(value) for name, value in cells.items() if name.endswith((":s", ":f")))





def test_redis_outage_serves_requests_and_applies_buffered_updates(
    fake_upstream: FakeUpstream, own_redis_server: RedisServer, tmp_path: Path
) -> None:
    """Redis down: still 200s, /ready says unreachable, updates buffered. Redis back: every
    buffered update lands; alpha + beta totals equal the number of rewarded attempts exactly."""
    url = own_redis_server.url
    config = learning_config(fake_upstream, tmp_path, opposite_agents(fake_upstream), **UNFORGETTING)
    # Refused connections fail at once while Redis is down; a generous timeout keeps a busy
    # machine from timing out a write Redis did apply (which the retry would count twice).
    config["redis"] = {"url": url, "timeout_s": 2.0}
    with serve(config, seed=4) as served:
        learn(served, 30)
        assert served.ready().status_code == 200
        own_redis_server.stop()
        learn(served, 30)  # every answer asserted 200 inside ask()
        ready = served.ready()
        assert ready.status_code == 503
        assert ready.json()["store_reachable"] is False
        store = served.services.store
        assert isinstance(store, RedisStore)
        assert store.pending > 0
        own_redis_server.start()
        wait_for(lambda: store.pending == 0 and served.ready().status_code == 200)
        assert store.dropped_updates == 0
        assert served.services.learner.failed_writes == 0
        attempts = {agent: sum(len(r) for _, r in served.outcomes(agent)) for agent in ("A", "B")}
        for agent in ("A", "B"):
            assert len(served.outcomes(agent)) == 60
            for table in (Table(agent), Table(agent, CONTEXT)):
                assert redis_totals(url, table) == attempts[agent], table
        assert redis_totals(url, Table(POOLED)) == attempts["A"] + attempts["B"]


# -- (e) non-stationarity: a degraded model loses its lead -----------------------------------
def test_a_degraded_model_loses_its_lead_with_a_half_life(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    """Virtual clock, 1 s per request, half-life 30 s. ``a-one`` answers every call and leads;
    after request 150 it fails 80% of its calls while ``a-two`` keeps failing 20%.

    Over 1000 in-process seeded runs: a-one's share in requests 100-150 had min 0.82;
    a-two's share in requests 50-150 after the drop had min 0.93, median 0.99 (without
    discounting the same figure had 0.5th percentile 0.43).
    """
    now = [1_000_000.0]
    fake_upstream.set_profile("a-one", **FAST)
    fake_upstream.set_profile("a-two", **FAST, failure_rate=0.2, fail_status=503)
    config = learning_config(fake_upstream, tmp_path, ["a-one", "a-two"], half_life_s=30)
    with serve(config, seed=5, clock=lambda: now[0]) as served:
        for _ in range(150):
            now[0] += 1.0
            served.ask("A", may_fail=True)
        fake_upstream.set_profile("a-one", **FAST, failure_rate=0.8, fail_status=503)
        for _ in range(150):
            now[0] += 1.0
            served.ask("A", may_fail=True)
        first = served.choices("A")
    assert share(first[100:150], "a-one") >= 0.7, first[100:150]
    assert share(first[200:300], "a-two") >= 0.85, first[200:300]


# -- (f) propensities ------------------------------------------------------------------------
def test_recorded_propensities_match_choice_frequencies(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    """Close arms (p = 0.8 vs 0.6) keep the policy uncertain. Each outcome's propensity is in
    (0, 1] and at least the exploration floor; summed over requests, the propensity of
    choosing ``a-one`` predicts how often it was chosen (a martingale: the difference has
    standard deviation sqrt(sum p(1-p)), plus the 64-draw Monte Carlo error)."""
    fake_upstream.set_profile("a-one", **FAST, failure_rate=0.2, fail_status=503)
    fake_upstream.set_profile("a-two", **FAST, failure_rate=0.4, fail_status=503)
    config = learning_config(fake_upstream, tmp_path, ["a-one", "a-two"], exploration_rate=0.1)
    with serve(config, seed=6) as served:
        learn(served, 200, agents=("A",), may_fail=True)
        with served.lock:
            scored = [s for s in served.scored if s.outcome.agent == "A"]
    props = [s.propensity for s in scored]
    assert len(props) == 200 and all(p is not None and 0.05 <= p <= 1.0 for p in props), props  # 0.1 / 2
    p_one = [
        p if s.outcome.decision.choice == "a-one" else 1.0 - p
        for s in scored
        if (p := s.propensity) is not None
    ]
    chosen = sum(s.outcome.decision.choice == "a-one" for s in scored)
    variance = sum(p * (1.0 - p) for p in p_one) * (1.0 + 1.0 / 64)
    assert abs(sum(p_one) - chosen) <= 4.0 * math.sqrt(variance) + 1.0, (sum(p_one), chosen)
    assert sum(0.1 < p < 0.9 for p in p_one) >= 5  # some decisions were genuinely uncertain
