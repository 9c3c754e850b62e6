"""``model-manager stats`` shows the shared counters next to the posteriors (Redis)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from support.embedded_db import saved_store
from support.servers import FakeUpstream
from support.tracking_support import Starter, backend, chat, config_dict, redis_target_of, start_proxy

from policies.base import ALL_PROMPTS, Delta, Table
from proxy.cli.stats import print_stats
from proxy.config.settings import parse_config

__all__ = ["backend", "start_proxy"]


@pytest.mark.parametrize("backend", ["redis", "redis-cluster"])
def test_stats_cli_shows_counters_and_posteriors(
    *,
    start_proxy: Starter,
    fake_upstream: FakeUpstream,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    backend: str,
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    target = redis_target_of(request, backend)
    assert target is not None
    fake_upstream.script("m1", [{"fail_status": 503}])
    config: dict[str, Any] = config_dict(
        fake_upstream,
        ("m1", "m2"),
        router={
            "policy": "thompson",
            "exploration_rate": 0.0,
            "priors": {"m1": {"alpha": 50, "beta": 1}},
            "policy_options": {"min_tries": 0},  # m2 has no prior: do not force its first tries
        },
    )
    proxy = start_proxy(config)
    with proxy.client("cli-agent") as client:
        models = [chat(client)[1] for _ in range(3)]
    proxy.wait_recorded(3)
    assert models[0] == "m2"
    parsed = parse_config({**config, "redis": target.config()})
    assert print_stats(parsed, agent="cli-agent", as_json=True) == 0
    rows = {row["model"]: row for row in orjson.loads(capsys.readouterr().out)}
    assert set(rows) == {"m1", "m2"}
    m1 = rows["m1"]["stats"]
    assert (m1["calls"], m1["failures"], m1["failures_by_kind"]) == (3, 1, {"server_error": 1})
    assert m1["decisions"] == 3 and m1["selection_share"] == 1.0
    assert rows["m2"]["stats"]["fallbacks"] == 1
    assert rows["m1"]["alpha"] > 50 and rows["m1"]["beta"] > 1  # prior 50/1 plus evidence
    assert print_stats(parsed, agent="cli-agent", as_json=False) == 0
    table = capsys.readouterr().out
    assert "cli-agent" in table and "p95 s" in table


def test_stats_cli_embedded_store_has_posteriors_only(
    tmp_path: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    fake_upstream: FakeUpstream,
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    config = config_dict(fake_upstream, server={"state_file": str(tmp_path / "none.json")})
    assert print_stats(parse_config(config), agent=None, as_json=True) == 1
    assert orjson.loads(capsys.readouterr().out) == []


def test_stats_cli_reports_the_policy_posterior_per_context(
    tmp_path: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    fake_upstream: FakeUpstream,
) -> None:
    """Agent table m1 = 4 successes, 1 of them in the "code" cell; evidence_scale 3,
    context_strength fixed at 2 (learnt strength off): every prompt sees 1 + 3 x 4;
    code prompts 1 + 3 x (cap(4 - 1, 2) + 1)."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    path = tmp_path / "state.json"
    router = {
        "policy": "thompson",
        "policy_options": {"evidence_scale": 3.0, "context_strength": 2.0, "context_strength_max": 2.0},
    }
    server = {"state_file": str(path)}
    config = parse_config(config_dict(fake_upstream, ("m1",), server=server, router=router))
    store = saved_store(path)
    store.apply_now([Delta(Table("a"), "m1", 4.0, 0.0), Delta(Table("a", "code"), "m1", 1.0, 0.0)])
    assert asyncio.run(store.flush())
    asyncio.run(store.close())
    for context, alpha in ((ALL_PROMPTS, 13.0), ("code", 10.0)):
        assert print_stats(config, agent="a", as_json=True, context=context) == 0
        (row,) = orjson.loads(capsys.readouterr().out)
        assert (row["model"], row["alpha"], row["beta"], row["decisions"]) == ("m1", alpha, 1.0, 4.0)
