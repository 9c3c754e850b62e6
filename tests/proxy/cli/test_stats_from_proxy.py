"""``model-manager stats`` right after traffic to a real ``model-manager serve`` (embedded
store): the rows and counters are those of GET /v1/stats; once the proxy is gone, the state
files give the same rows with every column filled."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
import yaml
from support.paths import REPO
from support.proxy_harness import MESSAGES, model_entry
from support.servers import FakeUpstream, ProxyProcess, free_port
from support.waiting import wait_for

KEY = "sk-master-stats-test"
AGENT = "stats-agent"
REQUESTS = 4
COUNTERS = ("calls", "failures", "fallbacks", "decisions", "tokens_in", "tokens_out")


def _argv(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "proxy", "stats", "--config", str(config), *args]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "MODEL_MANAGER_STATE_FILE")}


def _stats_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _argv(config, *args), cwd=REPO, env=_env(), capture_output=True, text=True, timeout=120, check=False
    )


def _stats_into_a_closed_pipe(config: Path, *args: str) -> tuple[int, str]:
    """``stats ... | head -c0``: exit code and stderr when the reader is gone before the output."""
    child = subprocess.Popen(
        _argv(config, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, env=_env()
    )
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()
    err = child.stderr.read().decode()
    return child.wait(timeout=120), err


def _json_rows(done: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    assert done.returncode == 0, done.stderr[-3000:]
    return {row["model"]: row for row in orjson.loads(done.stdout)}


@pytest.fixture
def config_file(tmp_path: Path, fake_upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("MODEL_MANAGER_STATE_FILE", raising=False)
    config = {
        "model_list": [model_entry(name, fake_upstream.url) for name in ("m1", "m2")],
        "router": {
            "policy": "thompson",
            "exploration_rate": 0.0,
            "half_life_s": None,  # no decay: the two reads see the same posteriors
            "priors": {"m1": {"alpha": 50, "beta": 1}, "m2": {"alpha": 1, "beta": 50}},  # m1 first
            "policy_options": {"min_tries": 0},
        },
        "server": {"master_key": KEY, "state_file": str(tmp_path / "state.json")},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_stats_right_after_traffic_reads_the_running_proxy_then_the_state_files(
    config_file: Path, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.script("m1", [{"fail_status": 503}])  # the first request falls back to m2
    with ProxyProcess(config_file, env={"REDIS_URL": ""}) as server:
        client = openai.OpenAI(
            base_url=f"{server.url}/v1", api_key=KEY, max_retries=0, default_headers={"X-Agent": AGENT}
        )
        with client:
            for _ in range(REQUESTS):
                client.chat.completions.create(model="auto", messages=MESSAGES)
        auth = {"Authorization": f"Bearer {KEY}"}

        def served() -> dict[str, Any]:
            body = httpx.get(f"{server.url}/v1/stats", params={"agent": AGENT}, headers=auth).json()
            return {row["model"]: row for row in body["agents"][0]["models"]}

        wait_for(lambda: sum(row["decisions"] for row in served().values()) == REQUESTS)
        expected = served()
        live = _json_rows(_stats_cli(config_file, "--url", server.url, "--json", "--agent", AGENT))
        table = _stats_cli(config_file, "--url", server.url)
        piped_code, piped_err = _stats_into_a_closed_pipe(config_file, "--url", server.url, "--json")
    assert piped_code == 0 and "Traceback" not in piped_err and "BrokenPipeError" not in piped_err
    assert set(live) == set(expected) == {"m1", "m2"}
    for model, row in expected.items():
        counters = live[model]["stats"]
        assert {k: counters[k] for k in COUNTERS} == {k: row[k] for k in COUNTERS}
        assert counters["latency_s"] == row["latency_s"]
        assert counters["selection_share"] == row["selection_share"]
        assert live[model]["alpha"] == round(row["posterior"]["alpha"], 3)
        assert live[model]["decisions"] == round(row["evidence"], 2) > 0
    m1, m2 = live["m1"]["stats"], live["m2"]["stats"]
    assert (m1["calls"], m1["failures"], m1["decisions"]) == (REQUESTS, 1, REQUESTS)
    assert (m2["calls"], m2["fallbacks"]) == (1, 1)
    assert m1["latency_s"]["p50"] is not None and m1["tokens_out"] > 0

    offline = _json_rows(_stats_cli(config_file, "--url", f"http://127.0.0.1:{free_port()}", "--json"))
    assert offline == live  # saved at shutdown: the same rows, every counter included

    assert table.returncode == 0, table.stderr
    lines = [line for line in table.stdout.splitlines() if line.startswith(AGENT)]
    assert len(lines) == 2
    columns = [line.split("]", 1)[1].split() for line in lines]
    assert all(len(cells) == 10 and "-" not in cells for cells in columns)  # every column filled


def test_stats_with_a_wrong_key_says_so_and_reads_the_state_files(
    config_file: Path, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    other = tmp_path / "other.yaml"
    data = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    data["server"]["master_key"] = "sk-wrong"
    other.write_text(yaml.safe_dump(data), encoding="utf-8")
    with ProxyProcess(config_file, env={"REDIS_URL": ""}) as server:
        done = _stats_cli(other, "--url", server.url, "--json")
    assert "refused the master key" in done.stderr
    assert (done.returncode, orjson.loads(done.stdout)) == (1, [])
