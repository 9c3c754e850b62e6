"""`model-manager demo` as a real subprocess: convergence, the outage's fallbacks, Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from typing import IO, Any

import httpx
import pytest
from support.paths import REPO

from proxy.cli.demo.config import AGENT_MODELS, EXPECTED_BEST, FAILING_MODEL
from proxy.cli.demo.tally import Window

DEMO = [sys.executable, "-m", "proxy", "demo", "--port", "0"]
URL = re.compile(r"starting the proxy on (http://127\.0\.0\.1:(\d+))")
ENV = {**os.environ, "REDIS_URL": "redis://127.0.0.1:1/0"}  # ignored: the demo is embedded-only


def _run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DEMO, *args], capture_output=True, text=True, timeout=180, cwd=REPO, env=ENV, check=False
    )


def test_demo_converges_per_agent_and_counts_the_outage_fallbacks() -> None:
    # bounded by calls, not seconds: a loaded machine gives the router as much evidence
    done = _run_demo("--seconds", "120", "--requests", "600", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    summary: dict[str, Any] = json.loads(done.stdout)
    human = done.stderr
    url = URL.search(human)
    assert url is not None, human
    assert summary["dashboard_url"] == f"{url.group(1)}/dashboard"
    assert f"Dashboard: {url.group(1)}/dashboard" in human
    assert f"Stats:     {url.group(1)}/v1/stats" in human
    for agent, models in AGENT_MODELS.items():
        assert agent in human
        assert all(model in human for model in models)
        row = summary["agents"][agent]
        assert row["preferred"] == EXPECTED_BEST[agent], (agent, row)
        shares = {model: cell["recent_share"] for model, cell in row["models"].items()}
        others = [share for model, share in shares.items() if model != EXPECTED_BEST[agent]]
        assert shares[EXPECTED_BEST[agent]] > 2 * max(others), (agent, shares)
    assert summary["preferred_before_outage"]["support-bot"] == FAILING_MODEL
    support = summary["agents"]["support-bot"]
    failing = support["models"][FAILING_MODEL]
    assert failing["failures"] > 0
    assert support["fell_back"] > 0
    fallbacks = {model: cell["fallbacks"] for model, cell in support["models"].items()}
    assert sum(fallbacks.values()) >= support["fell_back"]  # a call may fall back twice
    assert sum(n for model, n in fallbacks.items() if model != FAILING_MODEL) > 0
    assert support["streamed"] == support["requests"] > 0
    assert summary["workflows"] > 0
    assert summary["interrupted"] is False


def test_demo_prints_plain_lines_when_piped() -> None:
    done = _run_demo("--seconds", "3", "--requests", "60")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if " calls (" in line]
    assert len(lines) >= 2
    assert all("\x1b[" not in line and "\r" not in line for line in lines)
    assert "60 calls" in lines[-1]
    assert all(agent in lines[-1] for agent in AGENT_MODELS)
    assert "/dashboard" in done.stdout


def _wait_for_traffic(stream: IO[str], deadline: float) -> tuple[int, list[str]]:
    """Read the demo's stdout until a progress line shows calls; (port, lines read)."""
    seen: list[str] = []
    port = 0
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        seen.append(line)
        found = URL.search(line)
        port = int(found.group(2)) if found else port
        calls = re.search(r" (\d+) calls \(", line)
        if port and calls and int(calls.group(1)) > 0:
            return port, seen
    raise AssertionError("no traffic seen:\n" + "".join(seen))


def test_ctrl_c_mid_run_stops_traffic_and_releases_the_port() -> None:
    process = subprocess.Popen(
        [*DEMO, "--seconds", "120"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=ENV,
    )
    try:
        assert process.stdout is not None
        port, _ = _wait_for_traffic(process.stdout, time.monotonic() + 120)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err[-3000:]
    assert "Traceback" not in err
    assert "Dashboard:" in out
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    with socket.socket() as sock:  # a new server may listen there (TIME_WAIT is what REUSEADDR allows)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()


def test_keep_serving_leaves_the_proxy_up_until_ctrl_c() -> None:
    process = subprocess.Popen(
        [*DEMO, "--seconds", "2", "--keep-serving"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=ENV,
    )
    try:
        assert process.stdout is not None
        lines = iter(process.stdout.readline, "")
        line = next(line for line in lines if "keeps serving" in line)
        url = re.search(r"on (http://\S+);", line)
        assert url is not None, line
        stats = httpx.get(f"{url.group(1)}/v1/stats", timeout=10).json()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert {row["agent"] for row in stats["agents"]} >= set(AGENT_MODELS)
    assert process.returncode == 0, err[-3000:]
    assert "Traceback" not in err


def test_window_shares_cover_the_last_n_first_choices() -> None:
    window = Window(size=10)
    window.add(10, {"a": 10})
    window.add(20, {"a": 12, "b": 8})
    window.add(30, {"a": 12, "b": 18})
    assert window.shares() == {"a": 0.0, "b": 1.0}
    assert Window(size=100, snapshots=window.snapshots).shares() == {"a": 0.4, "b": 0.6}
