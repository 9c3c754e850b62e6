"""The in-process ModelManager end to end: the real fake upstream, the embedded store and Redis."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from support.proxy_harness import basic_config
from support.redis_server import RedisServer
from support.servers import FakeUpstream

from proxy import ModelManager, ModelManagerError, SyncModelManager
from storage.embedded.database import database_path

MESSAGES = [{"role": "user", "content": "Say hello"}]


@pytest.fixture(params=["embedded", "redis"])
def config_path(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    fake_upstream: FakeUpstream,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Path]:
    """config.yaml with m1, m2 on the fake upstream (fixed order), on each storage."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    config: dict[str, Any] = basic_config(fake_upstream, server={"state_file": str(tmp_path / "state.json")})
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        config["redis"] = {"url": server.url}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    yield path


def _row(stats: dict[str, Any], agent: str, model: str) -> dict[str, Any]:
    [found] = [a for a in stats["agents"] if a["agent"] == agent]
    [row] = [m for m in found["models"] if m["model"] == model]
    return row


async def test_generate_then_stats_workflow_and_feedback(
    config_path: Path, fake_upstream: FakeUpstream
) -> None:
    async with ModelManager.from_config(config_path) as mm:
        workflow = mm.start_workflow_tracking("wf-1")
        answer = await mm.generate_response(
            agent="planner", messages=MESSAGES, workflow_id=workflow, max_tokens=20
        )
        assert answer.model == "m1"
        assert answer.text and "m1" in answer.text
        assert answer.request_id.startswith("mm-")
        assert answer.usage["total_tokens"] > 0
        assert answer.completion["object"] == "chat.completion"
        assert fake_upstream.bodies()[-1]["max_tokens"] == 20

        stats = await mm.get_agent_performance_stats()
        assert _row(stats, "planner", "m1")["successes"] == 1

        again = await mm.track_workflow_usage(workflow, "coder", MESSAGES)
        summary = await mm.workflow_summary(workflow)
        assert summary is not None
        assert summary["requests"] == 2
        assert set(summary["agents"]) == {"planner", "coder"}

        credit = await mm.feedback(again.request_id, 0.9)
        assert credit["object"] == "feedback"
        assert credit["model"] == "m1"
        assert await mm.workflow_summary("wf-unknown") is None
    assert _stored_keys(config_path) > 0


def _stored_keys(config_path: Path) -> int:
    """Keys in the configured Redis, or rows of the embedded SQLite database (stats, decision
    records, posterior cells)."""
    config = yaml.safe_load(config_path.read_text())
    if "redis" not in config:
        with sqlite3.connect(database_path(Path(config["server"]["state_file"]))) as conn:
            return sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                       for t in ("stats", "decision", "posterior"))
    with redis.Redis.from_url(config["redis"]["url"]) as client:
        return int(client.dbsize())


async def test_fallback_when_a_model_fails(config_path: Path, fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_profile("m1", fail_status=503)
    async with ModelManager.from_config(config_path) as mm:
        answer = await mm.generate_response(agent="a", messages=MESSAGES)
        stats = await mm.get_agent_performance_stats("a")
    assert answer.model == "m2"
    assert _row(stats, "a", "m1")["failures"] == 1
    assert _row(stats, "a", "m2")["successes"] == 1


async def test_errors_are_typed_and_openai_shaped(config_path: Path, fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_default(fail_status=503)
    async with ModelManager.from_config(config_path) as mm:
        with pytest.raises(ModelManagerError) as failed:
            await mm.generate_response(agent="a", messages=MESSAGES)
        with pytest.raises(ModelManagerError) as invalid:
            await mm.generate_response(agent="a", messages=[])
        with pytest.raises(ModelManagerError) as unknown:
            await mm.feedback("mm-nothing", 0.5)
    assert (failed.value.status, failed.value.code) == (502, "all_models_failed")
    assert failed.value.error["error"]["type"] == "server_error"
    assert (invalid.value.status, invalid.value.param) == (400, "messages")
    assert unknown.value.status == 404


def test_sync_wrapper(config_path: Path) -> None:
    with SyncModelManager.from_config(config_path) as mm:
        answer = mm.generate_response(agent="script", messages=MESSAGES, workflow_id="wf-sync")
        stats = mm.get_agent_performance_stats("script")
        summary = mm.workflow_summary("wf-sync")
        credit = mm.feedback(answer.request_id, 1.0)
    assert answer.model == "m1"
    assert _row(stats, "script", "m1")["calls"] == 1
    assert summary is not None and summary["requests"] == 1
    assert credit["object"] == "feedback"


def test_import_proxy_is_light() -> None:
    import subprocess

    code = "import proxy, sys; print('starlette' in sys.modules, 'litellm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


async def test_reload_in_process(config_path: Path, fake_upstream: FakeUpstream) -> None:
    async with ModelManager.from_config(config_path) as mm:
        _keep_only(config_path, "m2")
        report = await mm.reload()
        answer = await mm.generate_response(agent="a", messages=MESSAGES)
    assert (report.reloaded, report.removed) == (True, ("m1",))
    assert answer.model == "m2"


def _keep_only(config_path: Path, model: str) -> None:
    config = yaml.safe_load(config_path.read_text())
    config["model_list"] = [e for e in config["model_list"] if e["model_name"] == model]
    config_path.write_text(yaml.safe_dump(config))
