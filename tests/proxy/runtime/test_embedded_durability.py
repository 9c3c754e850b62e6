"""The embedded database under real processes: a SIGKILL under load loses at most the
write-behind window and never corrupts the file; processes on one file add up exactly."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from support.embedded_db import integrity, saved_store
from support.servers import FakeUpstream, ProxyProcess
from support.tracking_support import MESSAGES, config_dict

from policies.base import Table
from proxy.config.settings import parse_config
from proxy.runtime.state import open_state

WINDOW_S = 1.0
"""The documented loss window of a kill: outcomes answered longer ago than this are stored."""
ENV = {"REDIS_URL": "", "MODEL_MANAGER_STATE_FILE": ""}


@pytest.fixture(autouse=True)
def _embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("MODEL_MANAGER_STATE_FILE", raising=False)


def write_config(upstream: FakeUpstream, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    # evidence mass = calls: no per-choice discount, no change detector
    router = {"policy": "thompson", "policy_options": {"choice_discount": 0.0, "change_memory": 0.0}}
    config = config_dict(upstream, router=router, server={"state_file": str(tmp_path / "state.json")})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path, config


def client(url: str, agent: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=10, default_headers={"X-Agent": agent}
    )


class Load:
    """Threads sending requests as ``agent`` until stopped; the monotonic time of each answer."""

    def __init__(self, url: str, agent: str, threads: int = 2) -> None:
        self.answered: list[float] = []
        self.sent = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(url, agent)) for _ in range(threads)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self, url: str, agent: str) -> None:
        with client(url, agent) as sdk:
            while not self._stop.is_set():
                with self._lock:
                    self.sent += 1
                try:
                    sdk.chat.completions.create(model="auto", messages=MESSAGES)
                except openai.APIError:
                    return
                with self._lock:
                    self.answered.append(time.monotonic())


def calls_of(url: str, agent: str) -> int:
    body = httpx.get(f"{url}/v1/stats", params={"agent": agent}, timeout=10).json()
    return sum(row["calls"] for row in body["agents"][0]["models"])


def loss_window(answered: list[float], stored: int, killed: float) -> str:
    """The measured window: the answers not stored are taken as the newest ones."""
    ordered = sorted(answered)
    lost = max(0, len(ordered) - stored)
    if lost == 0:
        return "no answered outcome lost"
    return f"lost the {lost} answered in the last {(killed - ordered[-lost]) * 1e3:.0f} ms before the kill"


def stored_mass(state_file: Path, agent: str) -> float:
    store = saved_store(state_file)
    found = store.load_now([Table(agent)], ["m1", "m2"])[Table(agent)]
    asyncio.run(store.close())
    return sum(e.total for e in found.values())


def test_a_sigkill_under_load_loses_at_most_the_window_and_never_corrupts(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    path, _ = write_config(fake_upstream, tmp_path)
    with ProxyProcess(path, env=ENV, cwd=tmp_path) as process:
        with client(process.url, "taught") as sdk:
            for _ in range(100):
                sdk.chat.completions.create(model="auto", messages=MESSAGES)
        with Load(process.url, "busy") as load:
            time.sleep(1.5)
            assert process.process is not None
            os.killpg(process.process.pid, signal.SIGKILL)
            killed = time.monotonic()
        process.process.wait(10)
    old_enough = sum(1 for at in load.answered if at <= killed - WINDOW_S)
    assert old_enough > 0 and load.sent >= len(load.answered)
    assert integrity(tmp_path / "state.db") == "ok"

    with ProxyProcess(path, env=ENV, cwd=tmp_path) as process:
        assert calls_of(process.url, "taught") == 100
        busy = calls_of(process.url, "busy")
        assert old_enough <= busy <= load.sent, (old_enough, busy, load.sent)
        print(f"kill -9: answered {len(load.answered)} (>{WINDOW_S} s before the kill: {old_enough}), "
              f"sent {load.sent}, stored after restart {busy}; {loss_window(load.answered, busy, killed)}")
    assert stored_mass(tmp_path / "state.json", "taught") == pytest.approx(100.0)
    assert old_enough <= stored_mass(tmp_path / "state.json", "busy") <= load.sent
    assert integrity(tmp_path / "state.db") == "ok"


@pytest.mark.parametrize("workers", [None, 2], ids=["two-serve-processes", "one-serve-with-workers-2"])
def test_processes_on_one_database_add_up_exactly(
    fake_upstream: FakeUpstream, tmp_path: Path, workers: int | None
) -> None:
    path, config = write_config(fake_upstream, tmp_path)
    per_thread = 30
    with ProxyProcess(path, env=ENV, cwd=tmp_path, workers=workers) as one, \
            ProxyProcess(path, env=ENV, cwd=tmp_path, workers=workers) as two:

        def send(url: str) -> None:
            with client(url, "shared") as sdk:
                for _ in range(per_thread):
                    sdk.chat.completions.create(model="auto", messages=MESSAGES)

        senders = [threading.Thread(target=send, args=(url,)) for url in (one.url, two.url) for _ in range(2)]
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join(timeout=60)
        total = per_thread * len(senders)
        deadline = time.monotonic() + 10
        while calls_of(one.url, "shared") < total:  # one sees the other's writes, read from the database
            assert time.monotonic() < deadline, one.output()[-2000:]
            time.sleep(0.05)
        assert calls_of(one.url, "shared") == calls_of(two.url, "shared") == total
    state = open_state(parse_config(config), time.time)
    counts = asyncio.run(state.tracking.stats(["shared"]))["shared"]
    asyncio.run(state.close())
    assert sum(v for k, v in counts.items() if k.endswith("|calls")) == total
    assert sum(v for k, v in counts.items() if k.endswith("|decisions")) == total
    assert stored_mass(tmp_path / "state.json", "shared") == pytest.approx(total)
    assert integrity(tmp_path / "state.db") == "ok"
