"""Embedded mode: a real proxy process stopped with SIGTERM and started again on the same
state database still answers /v1/stats, /v1/workflows and feedback on pre-restart requests;
a corrupt JSON tracking file met by the migration is moved aside."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from support.servers import FakeUpstream, ProxyProcess
from support.tracking_support import chat
from test_tracking_processes import EXPECTED_CALLS, Remote
from test_tracking_stats import check_stats, check_workflows, run_plan, scripted_config

TRACKING_FILE = "state.tracking.json"
DATABASE = "state.db"


def embedded_config(upstream: FakeUpstream, tmp_path: Path) -> Path:
    """The scripted stats config on the embedded store, state in ``tmp_path``."""
    config = scripted_config(upstream)
    config["server"] = {"state_file": str(tmp_path / "state.json")}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


class Poster(Remote):
    """A Remote that can also POST JSON."""

    def post(self, path: str, body: Any) -> httpx.Response:
        return httpx.post(self.url + path, json=body, timeout=10)


def feedback(remote: Poster, request_id: str, score: float) -> tuple[int, dict[str, Any]]:
    response = remote.post("/v1/feedback", {"request_id": request_id, "score": score})
    body: dict[str, Any] = response.json()
    return response.status_code, body


@pytest.fixture(autouse=True)
def _embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)


def test_stats_workflows_and_feedback_survive_a_restart(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    fake_upstream.set_default(prompt_tokens=11)
    config = embedded_config(fake_upstream, tmp_path)
    with ProxyProcess(config, cwd=tmp_path) as process:
        before = Poster(process.url)
        tokens = run_plan([before])
        before.wait_calls(EXPECTED_CALLS)
        request_ids = before.get("/v1/workflows/wf-A").json()["request_ids"]
        status, first = feedback(before, request_ids[0], 0.2)
        assert status == 200 and first["changed"], first
    assert (tmp_path / DATABASE).exists() and not (tmp_path / TRACKING_FILE).exists()

    with ProxyProcess(config, cwd=tmp_path) as process:
        after = Poster(process.url)
        check_stats(after, tokens)
        check_workflows(after, tokens)
        assert after.get("/v1/workflows/wf-A").json()["request_ids"] == request_ids
        # the applied reward was saved: the same score again changes nothing
        status, again = feedback(after, request_ids[0], 0.2)
        assert status == 200 and not again["changed"], again
        assert again["previous_reward"] == first["reward"]
        status, other = feedback(after, request_ids[1], 0.2)
        assert status == 200 and other["changed"] and other["request_id"] == request_ids[1], other
        assert feedback(after, "mm-never-seen", 0.2)[0] == 404
        with after.client("planner", "wf-A") as client:
            chat(client)
        after.wait_calls(EXPECTED_CALLS + 1)  # restored counters keep counting
        assert after.get("/v1/workflows/wf-A").json()["requests"] == 6


def test_corrupt_tracking_file_is_moved_aside_and_the_proxy_serves(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    partial = b'{"format": "model-manager-tracking", "version": 1, "stats": {"planner": {"m1|calls'
    (tmp_path / TRACKING_FILE).write_bytes(partial)
    config = embedded_config(fake_upstream, tmp_path)
    with ProxyProcess(config, cwd=tmp_path) as process:
        remote = Poster(process.url)
        assert remote.get("/v1/stats").json()["agents"] == []
        aside = sorted(tmp_path.glob(f"{TRACKING_FILE}.corrupt-*"))
        assert [p.read_bytes() for p in aside] == [partial]
        assert "unusable" in process.output()
        with remote.client("coder") as client:
            chat(client)
        remote.wait_calls(1)
    with ProxyProcess(config, cwd=tmp_path) as process:
        rows = Poster(process.url).get("/v1/stats").json()["agents"]
        assert [(row["agent"], sum(m["calls"] for m in row["models"])) for row in rows] == [("coder", 1)]
