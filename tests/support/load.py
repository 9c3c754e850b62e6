"""Concurrent client load for tests: threads of openai SDK clients calling proxies.

    with Load(urls, agents, threads=4) as load:   # starts at once; ``stop()`` or exit ends it
        wait_for(lambda: load.answered_total() >= 100)
    load.answered      # agent -> answers counted (status 200)
    load.failures      # every failed call (exception repr), empty when none failed

Each thread cycles through the agents and the proxy URLs, so every agent's requests reach
every proxy. ``workflow`` sets X-Workflow (one id per agent: ``<workflow>-<agent>``).
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any

import openai

from support.running import Running

MESSAGES: list[dict[str, Any]] = [{"role": "user", "content": "Say hello"}]


class Load(Running):
    def __init__(
        self,
        urls: Sequence[str],
        agents: Sequence[str],
        *,
        threads: int = 4,
        workflow: str | None = None,
    ) -> None:
        self._urls = list(urls)
        self._agents = list(agents)
        self._workflow = workflow
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.answered: Counter[str] = Counter()
        self.models: Counter[tuple[str, str]] = Counter()
        self.failures: list[str] = []
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def answered_total(self) -> int:
        with self._lock:
            return sum(self.answered.values())

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _client(self, url: str, agent: str) -> openai.OpenAI:
        headers = {"X-Agent": agent}
        if self._workflow is not None:
            headers["X-Workflow"] = f"{self._workflow}-{agent}"
        return openai.OpenAI(
            base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=20, default_headers=headers
        )

    def _run(self, index: int) -> None:
        pairs = [(url, agent) for agent in self._agents for url in self._urls]
        clients = {pair: self._client(*pair) for pair in pairs}
        try:
            for url, agent in itertools.islice(itertools.cycle(pairs), index, None):
                if self._stop.is_set():
                    return
                self._call(clients[url, agent], agent)
        finally:
            for client in clients.values():
                client.close()

    def _call(self, client: openai.OpenAI, agent: str) -> None:
        try:
            raw = client.chat.completions.with_raw_response.create(model="auto", messages=MESSAGES)
            model = raw.headers["x-model-manager-model"]
        except Exception as exc:
            with self._lock:
                self.failures.append(repr(exc))
            return
        with self._lock:
            self.answered[agent] += 1
            self.models[agent, model] += 1

