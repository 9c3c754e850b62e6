"""ScriptedUpstream: a fake ``proxy.forwarding.base.Upstream`` that plays a script per model.

Like httpx's MockTransport, for driving ``handle_chat`` in-process in milliseconds. Each call
to a model takes the next step of its script: ``Answer`` (JSON, or a stream of chunks that
may be cut after k), ``Fail`` (an UpstreamError of some kind) or ``Hang`` (never returns
until cancelled). Time passes only on the given FakeClock: a step advances it by its
``latency_s`` (a stream: ``ttft_s`` to the first chunk, ``chunk_s`` per later chunk).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from proxy.config.settings import Arm
from proxy.forwarding.base import Completion, FailureKind, Summary, UpstreamError, Usage
from proxy.forwarding.sse_events import DONE
from support.clocks import FakeClock


@dataclass(frozen=True)
class Answer:
    """A good answer: ``chunks`` of text (JSON: joined), ``cut_after`` k chunks for a stream.

    With ``tool_call`` a stream's first chunk is text and every later one a piece of the
    arguments of one tool call (``call_<model>``, function ``f``).
    """

    chunks: Sequence[str] = ("Hello", " there", ".")
    latency_s: float = 0.1
    ttft_s: float = 0.05
    chunk_s: float = 0.01
    completion_tokens: int = 3
    cut_after: int | None = None
    tool_call: bool = False


@dataclass(frozen=True)
class Fail:
    """The call fails after ``latency_s`` with ``kind`` (and HTTP ``status``, ``retry_after_s``)."""

    kind: FailureKind
    status: int | None = None
    latency_s: float = 0.02
    retry_after_s: float | None = None
    message: str = "scripted failure"


@dataclass(frozen=True)
class Hang:
    """The call never answers (until it is cancelled)."""


Step = Answer | Fail | Hang


@dataclass(frozen=True)
class Call:
    """One call the upstream received."""

    model: str
    stream: bool
    timeout: float


class ScriptedUpstream:
    """Plays ``scripts[model]`` one step per call; ``calls`` and ``streams`` keep what happened."""

    def __init__(self, scripts: Mapping[str, Sequence[Step]], clock: FakeClock) -> None:
        self._scripts = {model: list(steps) for model, steps in scripts.items()}
        self.clock = clock
        self.calls: list[Call] = []
        self.streams: list[ScriptedStream] = []
        self.bodies: list[dict[str, Any]] = []
        """The body of each call, in order."""
        self.hanging = asyncio.Event()
        """Set when a call starts to hang (so a test knows when to cancel)."""

    async def complete(self, arm: Arm, body: dict[str, Any], timeout: float) -> Completion:
        self.bodies.append(body)
        step = await self._take(arm, stream=False, timeout=timeout)
        self.clock.now += step.latency_s
        summary = Summary()
        payload = _completion(arm.name, "".join(step.chunks), step.completion_tokens)
        summary.add_payload(payload)
        return Completion(orjson.dumps(payload), summary)

    async def open_stream(
        self, arm: Arm, body: dict[str, Any], *, first_chunk_timeout: float, timeout: float
    ) -> ScriptedStream:
        self.bodies.append(body)
        step = await self._take(arm, stream=True, timeout=timeout)
        self.clock.now += step.ttft_s
        stream = ScriptedStream(arm.name, step, self.clock)
        self.streams.append(stream)
        return stream

    async def _take(self, arm: Arm, *, stream: bool, timeout: float) -> Answer:
        self.calls.append(Call(arm.name, stream, timeout))
        script = self._scripts.get(arm.name)
        assert script, f"no step left for {arm.name}"
        step = script.pop(0)
        if isinstance(step, Hang):
            self.hanging.set()
            await asyncio.Event().wait()
        if isinstance(step, Fail):
            self.clock.now += step.latency_s
            raise UpstreamError(step.kind, step.message, status=step.status, retry_after_s=step.retry_after_s)
        assert isinstance(step, Answer)
        return step


@dataclass
class ScriptedStream:
    """A ChunkStream whose first chunk has arrived; ``closed`` once released by the proxy."""

    model: str
    step: Answer
    clock: FakeClock
    summary: Summary = field(default_factory=Summary)
    first: bytes = b""
    closed: bool = False

    def __post_init__(self) -> None:
        self.first = self._frame(0)

    async def events(self) -> AsyncIterator[bytes]:
        step = self.step
        for index in range(1, len(step.chunks)):
            if step.cut_after is not None and index >= step.cut_after:
                raise UpstreamError(FailureKind.STREAM_CUT, "scripted cut")
            await asyncio.sleep(0)
            self.clock.now += step.chunk_s
            yield self._frame(index)
        self.summary.usage = Usage(1, step.completion_tokens)
        yield DONE

    async def aclose(self) -> None:
        self.closed = True

    def _frame(self, index: int) -> bytes:
        last = index == len(self.step.chunks) - 1
        delta: dict[str, Any] = {"content": self.step.chunks[index]}
        if self.step.tool_call and index > 0:
            call: dict[str, Any] = {"index": 0, "function": {"arguments": self.step.chunks[index]}}
            if index == 1:
                call.update(id=f"call_{self.model}", type="function")
                call["function"]["name"] = "f"
            delta = {"tool_calls": [call]}
        finish = ("tool_calls" if self.step.tool_call else "stop") if last else None
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        payload = {"object": "chat.completion.chunk", "model": self.model, "choices": [choice]}
        self.summary.add_payload(payload)
        return b"data: " + orjson.dumps(payload) + b"\n\n"


def _completion(model: str, text: str, completion_tokens: int) -> dict[str, Any]:
    return {
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": completion_tokens},
    }
