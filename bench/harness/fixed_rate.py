"""Open-loop load at a fixed rate from several agents (aiohttp), every answer recorded.

``run_load(url, plan, rate, seconds)`` starts request i at ``i / rate`` seconds (late starts
fire at once, so a slow proxy sees a burst, not a lower rate) and stops by itself after
``rate * seconds`` requests. Each answer becomes a ``Result``: status, the proxy's attempts
header and request id, whether the client saw a failure, and the error text it was shown. A
stream resumed by another model (router.resume_streams) says so in its last chunk, with the
request's attempts in all (its header was sent before the resume).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp
import orjson

MESSAGES = [{"role": "user", "content": "Say hello in one short sentence."}]
CLIENT_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Sender:
    """Who sends a request: agent, workflow, the model field, stream or not, pinned or not."""

    agent: str
    workflow: str | None
    model: str
    stream: bool = False
    pinned: bool = False

    def headers(self) -> dict[str, str]:
        found = {"X-Agent": self.agent, "Content-Type": "application/json", "Authorization": "Bearer x"}
        if self.workflow is not None:
            found["X-Workflow"] = self.workflow
        if self.pinned:
            found["X-Model-Manager-Pin"] = "true"
        return found

    def body(self) -> bytes:
        body = {"model": self.model, "messages": MESSAGES, "max_tokens": 16, "stream": self.stream}
        return orjson.dumps(body)


@dataclass
class Result:
    """One request as the client saw it (``attempts`` None when no proxy header came back)."""

    sender: Sender
    status: int
    attempts: int | None
    request_id: str | None
    failed: bool
    error: str = ""
    model: str | None = None
    resumed: bool = False


@dataclass
class LoadRun:
    """The results, and how long starting them all took (the achieved rate's denominator)."""

    results: list[Result] = field(default_factory=list)
    send_seconds: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.results) / self.send_seconds if self.send_seconds else 0.0


def stream_error(raw: bytes) -> str | None:
    """The failure a streamed body shows: an error event's text, a missing [DONE], or None."""
    for line in raw.split(b"\n"):
        if line.startswith(b"data: {") and b'"error"' in line[:40]:
            return line[6:].decode(errors="replace")
    return None if b"data: [DONE]" in raw else "stream ended without [DONE]"


def resumed_attempts(raw: bytes) -> int | None:
    """The attempts a resumed stream's last chunk (or, no model left to finish it, its error
    event) reports in ``x_model_manager``, else None."""
    for line in reversed(raw.split(b"\n")):
        if line.startswith(b"data: {") and b'"x_model_manager"' in line:
            try:
                return int(orjson.loads(line[6:])["x_model_manager"]["attempts"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                return None
    return None


def error_text(raw: bytes) -> str:
    """The message of an OpenAI-shaped error body, else the body itself."""
    try:
        return str(orjson.loads(raw)["error"]["message"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return raw.decode(errors="replace")


async def send_one(session: aiohttp.ClientSession, url: str, sender: Sender) -> Result:
    """POST one chat completion and read the whole answer."""
    try:
        async with session.post(url, data=sender.body(), headers=sender.headers()) as response:
            raw = await response.read()
            return _result(sender, response, raw)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Result(sender, 0, None, None, True, f"client error: {exc!r}")


def _result(sender: Sender, response: aiohttp.ClientResponse, raw: bytes) -> Result:
    attempts = response.headers.get("x-model-manager-attempts")
    request_id = response.headers.get("x-request-id")
    model = response.headers.get("x-model-manager-model")
    if response.status != 200:
        problem: str | None = error_text(raw)
    else:
        problem = stream_error(raw) if sender.stream else None
    count = int(attempts) if attempts else None
    resumed = resumed_attempts(raw) if sender.stream and response.status == 200 else None
    if resumed is not None:
        count = resumed
    failed = problem is not None
    finished = resumed is not None and not failed
    return Result(sender, response.status, count, request_id, failed, problem or "", model, finished)


def session(limit: int = 2000) -> aiohttp.ClientSession:
    timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_S)
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit), timeout=timeout)


async def run_load(url: str, senders: Sequence[Sender], rate: float, seconds: float) -> LoadRun:
    """``rate * seconds`` requests, round-robin over ``senders``, started on a fixed schedule."""
    total = max(1, round(rate * seconds))
    endpoint = f"{url}/v1/chat/completions"
    async with session() as client:
        start = time.monotonic()
        tasks = []
        for i in range(total):
            if (wait := start + i / rate - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(send_one(client, endpoint, senders[i % len(senders)])))
        sent = time.monotonic() - start
        return LoadRun(list(await asyncio.gather(*tasks)), sent)


async def send_all(url: str, senders: Sequence[Sender]) -> list[Result]:
    """One request per sender, concurrently (probes)."""
    async with session() as client:
        endpoint = f"{url}/v1/chat/completions"
        return list(await asyncio.gather(*(send_one(client, endpoint, s) for s in senders)))
