"""The demo's clients: support tickets handled as workflows of three agents' calls.

Each ticket is one workflow (``X-Workflow: ticket-N``): ``support-bot`` answers the
customer (streamed), ``extractor`` pulls the order fields out as JSON, ``summarizer``
condenses the transcript; then the workflow is finished with its outcome. Every call's
result (agent, answering model, attempts, status) goes to ``on_result``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

MODEL_HEADER = "x-model-manager-model"
ATTEMPTS_HEADER = "x-model-manager-attempts"
REQUEST_TIMEOUT_S = 30.0
CHAT_PATH = "/v1/chat/completions"

QUESTIONS = (
    "My order hasn't arrived yet, where is it?",
    "How do I reset my password?",
    "Can I change the delivery address of my order?",
    "The app crashes when I open my basket.",
    "Do you ship to Norway?",
    "I was charged twice for the same order.",
)
CUSTOMERS = ("ana@example.com", "bo@example.org", "chen@example.net", "dee@example.com")


@dataclass(frozen=True, slots=True)
class CallResult:
    """One chat call as the client saw it (``model`` None: no model answered)."""

    agent: str
    model: str | None
    attempts: int
    status: int
    streamed: bool

    @property
    def ok(self) -> bool:
        return self.status == 200


class Budget:
    """At most ``limit`` calls (None: unbounded) until ``stop`` is set."""

    def __init__(self, limit: int | None, stop: asyncio.Event) -> None:
        self.limit = limit
        self.used = 0
        self.stop = stop

    def take(self) -> bool:
        """Reserve one call; False when stopped or spent."""
        if self.stop.is_set() or (self.limit is not None and self.used >= self.limit):
            return False
        self.used += 1
        return True


class Traffic:
    """Workers sending tickets through the proxy at ``base_url`` until the budget ends."""

    def __init__(
        self, base_url: str, budget: Budget, on_result: Callable[[CallResult], None], seed: int | None = None
    ) -> None:
        self._client = httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT_S)
        self._budget = budget
        self._on_result = on_result
        self._rng = random.Random(seed)
        self._tickets = itertools.count(1)
        self.workflows = 0

    async def run(self, workers: int) -> None:
        """Run ``workers`` concurrent ticket loops to the end of the budget, then close."""
        try:
            await asyncio.gather(*(self._worker() for _ in range(workers)))
        finally:
            await self._client.aclose()

    async def _worker(self) -> None:
        while not self._budget.stop.is_set():
            if not await self._ticket(next(self._tickets)):
                return

    async def _ticket(self, number: int) -> bool:
        """One workflow; False when the budget ended before its first call."""
        workflow = f"ticket-{number:04d}"
        question, customer = self._rng.choice(QUESTIONS), self._rng.choice(CUSTOMERS)
        transcript = _transcript(question, customer, self._rng)
        calls = (
            ("support-bot", _support_body(question), True),
            ("extractor", _extract_body(transcript), False),
            ("summarizer", _summary_body(transcript), self._rng.random() < 0.3),
        )
        results = []
        for agent, body, stream in calls:
            if not self._budget.take():
                break
            results.append(await self._call(agent, workflow, body, stream))
        if not results:
            return False
        self.workflows += 1
        outcome = "success" if len(results) == len(calls) and all(r.ok for r in results) else "failure"
        await self._finish(workflow, outcome)
        return True

    async def _call(self, agent: str, workflow: str, body: dict[str, Any], stream: bool) -> CallResult:
        headers = {"X-Agent": agent, "X-Workflow": workflow}
        payload = {**body, "model": "auto", "stream": stream}
        try:
            async with self._client.stream("POST", CHAT_PATH, json=payload, headers=headers) as r:
                async for _ in r.aiter_bytes():
                    pass
        except httpx.HTTPError:
            result = CallResult(agent, None, 0, 0, stream)
        else:
            attempts = int(r.headers.get(ATTEMPTS_HEADER, "0") or 0)
            result = CallResult(agent, r.headers.get(MODEL_HEADER), attempts, r.status_code, stream)
        self._on_result(result)
        return result

    async def _finish(self, workflow: str, outcome: str) -> None:
        with contextlib.suppress(httpx.HTTPError):
            await self._client.post(f"/v1/workflows/{workflow}/finish", json={"outcome": outcome})


def _transcript(question: str, customer: str, rng: random.Random) -> str:
    order = f"A-{rng.randrange(10_000, 99_999)}"
    lines = [f"Customer ({customer}): {question} Order {order}."]
    lines += [
        "Agent: Thanks for reaching out, let me look into that for you.",
        f"Customer: It is order {order}, placed last week with express delivery.",
        "Agent: I can see the order. The parcel left our warehouse on Monday.",
        "Customer: The tracking page has not changed for three days now.",
        "Agent: I have opened an inquiry with the carrier and will update you by email.",
    ] * 3
    return "\n".join(lines)


def _support_body(question: str) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": "You are a friendly support assistant. Answer briefly."},
            {"role": "user", "content": question},
        ],
        "stream_options": {"include_usage": True},
    }


def _extract_body(transcript: str) -> dict[str, Any]:
    prompt = "Return a JSON object with the order id, the customer's email and the issue:\n"
    return {
        "messages": [{"role": "user", "content": prompt + transcript}],
        "response_format": {"type": "json_object"},
    }


def _summary_body(transcript: str) -> dict[str, Any]:
    prompt = "Summarise this support conversation in two sentences for the ticket log:\n"
    return {"messages": [{"role": "user", "content": prompt + transcript}], "max_tokens": 120}
