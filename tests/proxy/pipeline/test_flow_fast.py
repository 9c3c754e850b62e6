"""handle_chat driven in-process over a ScriptedUpstream and a fake monotonic clock.

No server and no real time: ordering, deadline, 4xx, cancellation, the overhead header and
exactly one finished outcome per request, each in milliseconds. Time passes only where a
step says so: the store read takes READ_S, each upstream step its scripted latency.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from starlette.responses import Response
from support.clocks import FakeClock
from support.scripted_upstream import Answer, Fail, Hang, ScriptedUpstream, Step

from policies.base import DecisionRequest, Snapshot, Table
from proxy.config.settings import parse_config
from proxy.forwarding.base import FailureKind
from proxy.pipeline.agents import AgentAdmission
from proxy.pipeline.cooldowns import Cooldowns
from proxy.pipeline.flow import handle_chat, plan
from proxy.pipeline.headers import ATTEMPTS_HEADER, MODEL_HEADER, OVERHEAD_HEADER
from proxy.pipeline.learning import Learner
from proxy.pipeline.outcome import Outcome, Status
from proxy.pipeline.request import parse_chat_request
from proxy.pipeline.router import Router
from proxy.pipeline.services import Services
from proxy.pipeline.usage_limits import UsageLimits
from proxy.wire.sse_response import Reply, SSEResponse
from storage.embedded.store import MemoryStore

MODELS = ("m1", "m2", "m3")
READ_S = 0.004
"""What the store read costs on the fake clock: the proxy's whole overhead in these tests."""


class TimedStore(MemoryStore):
    """The embedded store, whose reads take READ_S on the fake clock."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self._fake = clock

    async def load(self, tables: Sequence[Table], models: Sequence[str]) -> Snapshot:
        self._fake.now += READ_S
        return await super().load(tables, models)


class FinishedLearner(Learner):
    """Keeps every submitted outcome instead of learning from it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.finished: list[Outcome] = []

    def submit(self, outcome: Outcome) -> None:
        self.submitted += 1
        self.finished.append(outcome)


@dataclass
class Rig:
    services: Services
    upstream: ScriptedUpstream
    clock: FakeClock
    learner: FinishedLearner
    sent: list[dict[str, Any]] = field(default_factory=list)

    def only_outcome(self) -> Outcome:
        assert len(self.learner.finished) == 1, self.learner.finished
        return self.learner.finished[0]


def rig(
    scripts: dict[str, list[Step]], *, limits: dict[str, dict[str, int]] | None = None, **router: Any
) -> Rig:
    entries = [
        {
            "model_name": name,
            "litellm_params": {
                "model": f"openai/{name}",
                "api_base": "http://127.0.0.1:9",
                "api_key": "sk-unused",
                **(limits or {}).get(name, {}),
            },
        }
        for name in MODELS
    ]
    settings = {"policy": "fixed", "max_attempts": 3, "attempt_timeout_s": 5, "first_chunk_timeout_s": 2}
    config = parse_config({"model_list": entries, "router": {**settings, **router}})
    clock = FakeClock()
    store = TimedStore(clock)
    router_ = Router(config)
    learner = FinishedLearner(router_, store, random.Random(0))
    upstream = ScriptedUpstream(scripts, clock)
    services = Services(
        config=config,
        router=router_,
        store=store,
        upstream=upstream,
        learner=learner,
        rng=random.Random(0),
        clock=lambda: 1.7e9,
        agents=AgentAdmission(config),
        monotonic=clock,
        cooldowns=Cooldowns(clock),
        limits=UsageLimits(clock),
    )
    return Rig(services, upstream, clock, learner)


def chat(stream: bool = False) -> Any:
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    return parse_chat_request(orjson.dumps(body), {"x-agent": "a"})


@dataclass
class Played:
    status: int
    headers: dict[str, str]
    body: bytes


async def play(reply: Reply, *, leave_after: int | None = None, refuse_start: bool = False) -> Played:
    """Send ``reply`` as an ASGI server would; the client may leave after ``leave_after`` body
    messages, or be gone before the response starts (``refuse_start``)."""
    if isinstance(reply, Response):
        return Played(reply.status_code, dict(reply.headers), bytes(reply.body))
    messages: list[dict[str, Any]] = []
    gone = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if refuse_start:
            raise OSError("client gone")
        messages.append(message)
        bodies = sum(m["type"] == "http.response.body" for m in messages)
        if leave_after is not None and bodies >= leave_after:
            gone.set()

    await asyncio.get_running_loop().create_task(reply({"type": "http"}, receive, send))  # type: ignore[arg-type]
    start = messages[0]
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return Played(start["status"], headers, b"".join(m.get("body", b"") for m in messages[1:]))


async def ask(r: Rig, *, stream: bool = False, **play_options: Any) -> Played:
    return await play(await handle_chat(r.services, chat(stream)), **play_options)


def kinds(outcome: Outcome) -> list[tuple[str, FailureKind | None]]:
    return [(a.model, a.failure) for a in outcome.attempts]


def overhead_ms(played: Played) -> float:
    return float(played.headers[OVERHEAD_HEADER])


# -- ordering and fallback -------------------------------------------------------------------
async def test_fallback_tries_models_in_ranking_order_and_rests_a_rate_limited_one() -> None:
    r = rig(
        {
            "m1": [Fail(FailureKind.SERVER, 503, latency_s=0.03)],
            "m2": [Fail(FailureKind.RATE_LIMITED, 429, latency_s=0.01, retry_after_s=30)],
            "m3": [Answer(latency_s=0.2)],
        }
    )
    played = await ask(r)
    assert played.status == 200
    assert (played.headers[MODEL_HEADER], played.headers[ATTEMPTS_HEADER]) == ("m3", "3")
    assert [c.model for c in r.upstream.calls] == ["m1", "m2", "m3"]
    outcome = r.only_outcome()
    assert kinds(outcome) == [("m1", FailureKind.SERVER), ("m2", FailureKind.RATE_LIMITED), ("m3", None)]
    assert outcome.status is Status.SUCCESS and outcome.model == "m3"
    assert r.services.cooldowns.resting("m2") and not r.services.cooldowns.resting("m1")
    r.clock.now += 30
    assert not r.services.cooldowns.resting("m2")


async def test_a_resting_model_is_skipped_on_the_next_request() -> None:
    r = rig({"m1": [Fail(FailureKind.RATE_LIMITED, 429, retry_after_s=10)], "m2": [Answer(), Answer()]})
    await ask(r)
    await ask(r)
    assert [c.model for c in r.upstream.calls] == ["m1", "m2", "m2"]


# -- the overhead header: elapsed minus upstream time, on every path -------------------------
@pytest.mark.parametrize(
    ("scripts", "status"),
    [
        ({"m1": [Answer(latency_s=0.25)]}, 200),
        ({"m1": [Fail(FailureKind.TIMEOUT, latency_s=0.5)], "m2": [Answer(latency_s=0.25)]}, 200),
        ({"m1": [Fail(FailureKind.CLIENT, 422, latency_s=0.125)]}, 422),
        ({m: [Fail(FailureKind.SERVER, 500, latency_s=0.5)] for m in MODELS}, 502),
    ],
    ids=["success", "fallback", "upstream-4xx", "all-failed"],
)
async def test_overhead_header_is_the_time_outside_upstream_calls(
    scripts: dict[str, list[Step]], status: int
) -> None:
    r = rig(scripts)
    played = await ask(r)
    assert played.status == status
    assert overhead_ms(played) == pytest.approx(READ_S * 1000)


async def test_overhead_header_of_a_stream_counts_its_time_to_first_chunk_as_upstream() -> None:
    r = rig({"m1": [Fail(FailureKind.CONNECTION, latency_s=0.5)], "m2": [Answer(ttft_s=0.25)]})
    played = await ask(r, stream=True)
    assert played.status == 200 and played.headers[ATTEMPTS_HEADER] == "2"
    assert overhead_ms(played) == pytest.approx(READ_S * 1000)


# -- upstream 4xx ---------------------------------------------------------------------------
async def test_upstream_4xx_answers_at_once_and_penalises_no_model() -> None:
    r = rig({"m1": [Fail(FailureKind.CLIENT, 422, message="bad tool schema")], "m2": [Answer()]})
    played = await ask(r)
    error = orjson.loads(played.body)["error"]
    assert (played.status, error["code"]) == (422, "upstream_rejected_request")
    assert error["message"] == "bad tool schema"
    assert [c.model for c in r.upstream.calls] == ["m1"]
    outcome = r.only_outcome()
    assert outcome.status is Status.CLIENT_ERROR and MODEL_HEADER not in played.headers
    scored = await r.learner.score(outcome)
    assert scored.rewards == {}


# -- deadline -------------------------------------------------------------------------------
async def test_deadline_shrinks_each_timeout_and_stops_trying() -> None:
    r = rig(
        {m: [Fail(FailureKind.TIMEOUT, latency_s=0.75)] for m in MODELS},
        deadline_s=1.0,
        attempt_timeout_s=0.75,
    )
    played = await ask(r)
    assert played.status == 502
    timeouts = [c.timeout for c in r.upstream.calls]
    assert timeouts == [0.75, pytest.approx(1.0 - READ_S - 0.75)]  # m3 was out of time
    outcome = r.only_outcome()
    assert outcome.status is Status.FAILED and len(outcome.attempts) == 2
    assert outcome.latency_s == pytest.approx(READ_S + 1.5)


async def test_out_of_time_before_any_attempt_is_503_no_model_available() -> None:
    r = rig({"m1": [Answer()]}, deadline_s=0.005)  # the store read leaves 1 ms
    played = await ask(r)
    assert (played.status, orjson.loads(played.body)["error"]["code"]) == (503, "no_model_available")
    assert r.upstream.calls == [] and r.only_outcome().attempts == ()


# -- rate-limit budget: spent by attempts, not by planning ------------------------------------
async def test_plan_spends_no_budget_and_an_attempt_spends_one_request() -> None:
    r = rig({"m1": [Answer()]}, limits={"m1": {"rpm": 1}})
    ranking = r.services.router.policy_for("a").rank  # fixed: config order
    decision = ranking(_decision_request(), {}, random.Random(0))
    assert [a.name for a in plan(r.services, decision, 0)] == list(MODELS)
    assert [a.name for a in plan(r.services, decision, 0)] == list(MODELS)  # iterating spent nothing
    await ask(r)
    assert [a.name for a in plan(r.services, decision, 0)] == ["m2", "m3"]  # m1 at its rpm now


async def test_a_finished_answer_counts_its_completion_tokens_against_tpm() -> None:
    r = rig({"m1": [Answer(completion_tokens=40)]}, limits={"m1": {"tpm": 40}})
    await ask(r)
    assert r.services.limits.full(r.services.config.arms["m1"])


def _decision_request() -> DecisionRequest:
    return DecisionRequest("a", "", MODELS)


# -- streams --------------------------------------------------------------------------------
async def test_stream_relays_every_chunk_then_done_and_finishes_once() -> None:
    r = rig({"m1": [Answer(chunks=("a", "b", "c"), ttft_s=0.125, chunk_s=0.0625)]})
    played = await ask(r, stream=True)
    assert played.body.count(b"data: ") == 4 and played.body.endswith(b"data: [DONE]\n\n")
    outcome = r.only_outcome()
    assert outcome.status is Status.SUCCESS and outcome.summary is not None and outcome.summary.text == "abc"
    (attempt,) = outcome.attempts
    assert (attempt.ttft_s, attempt.latency_s) == (0.125, pytest.approx(0.25))
    assert outcome.ttft_s == pytest.approx(READ_S + 0.125)
    assert outcome.latency_s == pytest.approx(READ_S + 0.25)
    assert not r.upstream.streams[0].closed  # read to its end: nothing to release


async def test_stream_cut_after_first_chunk_ends_with_one_error_event_when_resume_is_off() -> None:
    r = rig({"m1": [Answer(chunks=("a", "b", "c"), cut_after=2)], "m2": [Answer()]}, resume_streams=False)
    played = await ask(r, stream=True)
    assert played.body.count(b"upstream_stream_error") == 1 and b"[DONE]" not in played.body
    assert b"x_model_manager" not in played.body
    outcome = r.only_outcome()
    assert outcome.status is Status.STREAM_ERROR and kinds(outcome) == [("m1", FailureKind.STREAM_CUT)]
    assert [c.model for c in r.upstream.calls] == ["m1"]  # too late to fall back


def texts(body: bytes) -> tuple[str, list[dict[str, Any]]]:
    """The answer text a client assembles from an SSE body, and every chunk payload."""
    payloads = [orjson.loads(line[6:]) for line in body.split(b"\n\n") if line.startswith(b"data: {")]
    text = "".join(c["delta"].get("content") or "" for p in payloads for c in p.get("choices", []))
    return text, payloads


async def test_stream_cut_is_continued_by_the_next_model_in_the_same_stream() -> None:
    r = rig(
        {
            "m1": [Answer(chunks=("Once", " upon", " a"), cut_after=2)],
            "m2": [Answer(chunks=(" time", " there", ".")), Answer()],
        }
    )
    played = await ask(r, stream=True)
    text, payloads = texts(played.body)
    assert text == "Once upon time there." and played.body.count(b"[DONE]") == 1
    assert b"error" not in played.body and {p["model"] for p in payloads} == {"m1"}
    assert payloads[-1]["x_model_manager"] == {"resumed_from": "m1", "resumed_by": "m2", "attempts": 2}
    outcome = r.only_outcome()
    assert outcome.status is Status.SUCCESS and kinds(outcome) == [
        ("m1", FailureKind.STREAM_CUT),
        ("m2", None),
    ]
    assert outcome.summary is not None and outcome.summary.text == "Once upon time there."
    assert outcome.summary.usage.completion_tokens == 3 + 3  # m1's 9 chars estimated as 3 tokens
    continuation = r.upstream.bodies[1]["messages"]
    assert continuation[-2] == {"role": "assistant", "content": "Once upon"}
    assert continuation[-1]["role"] == "user" and "Continue" in continuation[-1]["content"]
    assert r.upstream.streams[0].closed


async def test_a_broken_continuation_is_continued_again_and_every_attempt_recorded() -> None:
    r = rig(
        {
            "m1": [Answer(chunks=("a", "b", "c"), cut_after=2)],
            "m2": [Answer(chunks=("c", "d", "e"), cut_after=1)],
            "m3": [Answer(chunks=("d", "!"))],
        }
    )
    played = await ask(r, stream=True)
    text, payloads = texts(played.body)
    assert text == "abcd!" and played.body.count(b"[DONE]") == 1
    assert payloads[-1]["x_model_manager"] == {"resumed_from": "m1", "resumed_by": "m3", "attempts": 3}
    assert kinds(r.only_outcome()) == [
        ("m1", FailureKind.STREAM_CUT),
        ("m2", FailureKind.STREAM_CUT),
        ("m3", None),
    ]
    assert r.upstream.bodies[2]["messages"][-2]["content"] == "abc"


async def test_a_cut_with_no_model_left_ends_in_one_error_event() -> None:
    r = rig(
        {
            "m1": [Answer(chunks=("a", "b", "c"), cut_after=2)],
            "m2": [Fail(FailureKind.SERVER, 503)],
            "m3": [Fail(FailureKind.TIMEOUT)],
        }
    )
    played = await ask(r, stream=True)
    assert played.body.count(b"upstream_stream_error") == 1 and b"[DONE]" not in played.body
    error_event = orjson.loads(played.body.split(b"\n\n")[-2][6:])
    assert error_event["x_model_manager"] == {"resumed_from": "m1", "attempts": 3}
    assert error_event["error"]["code"] == "upstream_stream_error"
    outcome = r.only_outcome()
    assert outcome.status is Status.STREAM_ERROR
    assert kinds(outcome) == [
        ("m1", FailureKind.STREAM_CUT),
        ("m2", FailureKind.SERVER),
        ("m3", FailureKind.TIMEOUT),
    ]


def tool_calls(payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every tool-call delta a client received."""
    return [t for p in payloads for c in p.get("choices", []) for t in c["delta"].get("tool_calls") or ()]


async def test_a_tool_call_cut_mid_arguments_is_restarted_whole_by_the_next_model() -> None:
    r = rig(
        {
            "m1": [Answer(chunks=("Let me look.", '{"ci', 'ty": "Pa'), tool_call=True, cut_after=2)],
            "m2": [Answer(chunks=("", '{"city": ', '"Paris"}'), tool_call=True)],
        }
    )
    played = await ask(r, stream=True)
    text, payloads = texts(played.body)
    calls = tool_calls(payloads)
    assert text == "Let me look." and played.body.count(b"[DONE]") == 1 and b"error" not in played.body
    assert {t.get("id") for t in calls} == {"call_m2", None} and calls[0]["id"] == "call_m2"
    assert orjson.loads("".join(t["function"]["arguments"] for t in calls)) == {"city": "Paris"}
    assert payloads[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert r.upstream.bodies[1]["messages"][-2] == {"role": "assistant", "content": "Let me look."}
    outcome = r.only_outcome()
    assert kinds(outcome) == [("m1", FailureKind.STREAM_CUT), ("m2", None)]
    assert outcome.summary is not None and outcome.summary.tool_calls == [("f", '{"city": "Paris"}')]


async def test_tool_call_frames_reach_the_client_only_with_the_end_of_the_stream() -> None:
    r = rig({"m1": [Answer(chunks=("", '{"a"', ": 1}"), tool_call=True, chunk_s=0.5)]})
    reply = await handle_chat(r.services, chat(stream=True))
    sent: list[tuple[float, bytes]] = []

    async def send(message: dict[str, Any]) -> None:
        if message.get("body"):
            sent.append((r.clock.now, message["body"]))

    await reply({"type": "http"}, asyncio.Event().wait, send)  # type: ignore[arg-type]
    role, *held = sent
    assert len(held) == 3 and held[-1][1] == b"data: [DONE]\n\n"
    assert role[0] + 1.0 == pytest.approx(held[0][0]) and {at for at, _ in held} == {held[0][0]}
    assert tool_calls(texts(b"".join(frame for _, frame in held))[1])[0]["id"] == "call_m1"


async def test_with_resume_off_tool_call_frames_are_not_held_and_a_cut_is_an_error() -> None:
    r = rig(
        {"m1": [Answer(chunks=("", '{"a"', ": 1}"), tool_call=True, cut_after=2)], "m2": [Answer()]},
        resume_streams=False,
    )
    played = await ask(r, stream=True)
    _, payloads = texts(played.body)
    assert tool_calls(payloads)[0]["id"] == "call_m1" and b"upstream_stream_error" in played.body
    assert [c.model for c in r.upstream.calls] == ["m1"]


async def test_a_continuation_failing_to_open_rests_a_misconfigured_model() -> None:
    r = rig(
        {
            "m1": [Answer(chunks=("a", "b", "c"), cut_after=2)],
            "m2": [Fail(FailureKind.AUTH, 401)],
            "m3": [Answer(chunks=("c",))],
        }
    )
    played = await ask(r, stream=True)
    assert texts(played.body)[0] == "abc"
    assert kinds(r.only_outcome()) == [
        ("m1", FailureKind.STREAM_CUT),
        ("m2", FailureKind.AUTH),
        ("m3", None),
    ]
    assert r.services.cooldowns.resting("m2") and not r.services.cooldowns.resting("m1")


async def test_client_leaving_while_a_continuation_opens_records_each_attempt_once() -> None:
    r = rig({"m1": [Answer(chunks=("a", "b", "c"), cut_after=2)], "m2": [Hang()]})
    reply = await handle_chat(r.services, chat(stream=True))
    task = asyncio.get_running_loop().create_task(play(reply))
    await r.upstream.hanging.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    outcome = r.only_outcome()
    assert outcome.status is Status.CANCELLED
    assert kinds(outcome) == [("m1", FailureKind.STREAM_CUT), ("m2", FailureKind.CANCELLED)]
    assert outcome.summary is not None and outcome.summary.text == "ab"


async def test_a_cut_past_the_deadline_is_not_resumed() -> None:
    r = rig(
        {"m1": [Answer(chunks=("a", "b", "c"), ttft_s=0.5, chunk_s=1.0, cut_after=2)], "m2": [Answer()]},
        deadline_s=1.2,
    )
    played = await ask(r, stream=True)
    assert played.body.count(b"upstream_stream_error") == 1
    assert [c.model for c in r.upstream.calls] == ["m1"]


async def test_client_leaving_after_the_first_chunk_cancels_the_stream() -> None:
    r = rig({"m1": [Answer(chunks=tuple("abcdefgh"))]})
    played = await ask(r, stream=True, leave_after=1)
    assert played.status == 200
    outcome = r.only_outcome()
    assert outcome.status is Status.CANCELLED and kinds(outcome) == [("m1", FailureKind.CANCELLED)]
    assert r.upstream.streams[0].closed


async def test_stream_closed_before_its_first_iteration_still_finishes_once() -> None:
    r = rig({"m1": [Answer()]})
    with pytest.raises(OSError):
        await ask(r, stream=True, refuse_start=True)
    outcome = r.only_outcome()
    assert outcome.status is Status.CANCELLED and kinds(outcome) == [("m1", FailureKind.CANCELLED)]
    assert r.upstream.streams[0].closed


async def test_frames_left_mid_stream_and_closed_as_a_generator_finish_once() -> None:
    """What loop.shutdown_asyncgens does to a stream whose consumer went away: aclose() on
    the iterator the relay handed out, not on the relay."""
    r = rig({"m1": [Answer(chunks=tuple("abcdefgh"))]})
    reply = await handle_chat(r.services, chat(stream=True))
    bodies: list[Any] = []
    assert isinstance(reply, SSEResponse)
    reply.with_body(lambda body: bodies.append(body) or body)
    frames = bodies[0].__aiter__()
    assert (await frames.__anext__()).startswith(b"data: ")
    await frames.aclose()
    outcome = r.only_outcome()
    assert outcome.status is Status.CANCELLED and kinds(outcome) == [("m1", FailureKind.CANCELLED)]
    assert r.upstream.streams[0].closed
    await bodies[0].aclose()  # the consumer's own close afterwards changes nothing
    assert r.only_outcome() is outcome


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_client_leaving_before_the_first_chunk_cancels_the_attempt(stream: bool) -> None:
    r = rig({"m1": [Fail(FailureKind.SERVER, 500)], "m2": [Hang()]})
    task = asyncio.get_running_loop().create_task(handle_chat(r.services, chat(stream)))
    await r.upstream.hanging.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    outcome = r.only_outcome()
    assert outcome.status is Status.CANCELLED
    assert kinds(outcome) == [("m1", FailureKind.SERVER), ("m2", FailureKind.CANCELLED)]
    assert (await r.learner.score(outcome)).rewards == {}


# -- exactly one outcome on every path ------------------------------------------------------
PATHS: dict[str, tuple[dict[str, list[Step]], bool, dict[str, Any], Status]] = {
    "success": ({"m1": [Answer()]}, False, {}, Status.SUCCESS),
    "fallback": ({"m1": [Fail(FailureKind.TIMEOUT)], "m2": [Answer()]}, False, {}, Status.SUCCESS),
    "upstream-4xx": ({"m1": [Fail(FailureKind.CLIENT, 400)]}, False, {}, Status.CLIENT_ERROR),
    "all-failed": ({m: [Fail(FailureKind.SERVER, 502)] for m in MODELS}, False, {}, Status.FAILED),
    "stream": ({"m1": [Answer()]}, True, {}, Status.SUCCESS),
    "stream-fallback": ({"m1": [Fail(FailureKind.SERVER)], "m2": [Answer()]}, True, {}, Status.SUCCESS),
    "stream-cut": (
        {
            "m1": [Answer(chunks=("a", "b"), cut_after=1)],
            "m2": [Fail(FailureKind.SERVER)],
            "m3": [Fail(FailureKind.SERVER)],
        },
        True,
        {},
        Status.STREAM_ERROR,
    ),
    "stream-resumed": (
        {"m1": [Answer(chunks=("a", "b"), cut_after=1)], "m2": [Answer()]},
        True,
        {},
        Status.SUCCESS,
    ),
    "stream-resumed-twice": (
        {
            "m1": [Answer(chunks=("a", "b"), cut_after=1)],
            "m2": [Answer(chunks=("b", "c"), cut_after=1)],
            "m3": [Answer()],
        },
        True,
        {},
        Status.SUCCESS,
    ),
    "stream-tool-call-restarted": (
        {"m1": [Answer(chunks=("", "{"), tool_call=True, cut_after=1)], "m2": [Answer(tool_call=True)]},
        True,
        {},
        Status.SUCCESS,
    ),
    "leave-during-continuation": (
        {"m1": [Answer(chunks=("a", "b", "c"), cut_after=2)], "m2": [Answer(chunks=tuple("bcdefg"))]},
        True,
        {"leave_after": 3},
        Status.CANCELLED,
    ),
    "stream-all-failed": ({m: [Fail(FailureKind.SERVER)] for m in MODELS}, True, {}, Status.FAILED),
    "leave-after-first-chunk": (
        {"m1": [Answer(chunks=tuple("abcd"))]},
        True,
        {"leave_after": 1},
        Status.CANCELLED,
    ),
    "closed-before-first-iteration": ({"m1": [Answer()]}, True, {"refuse_start": True}, Status.CANCELLED),
}


@pytest.mark.parametrize("path", PATHS)
async def test_every_path_finishes_exactly_one_frozen_outcome(path: str) -> None:
    scripts, stream, options, status = PATHS[path]
    r = rig(scripts)
    try:
        await ask(r, stream=stream, **options)
    except OSError:
        assert options.get("refuse_start")
    await asyncio.sleep(0)
    outcome = r.only_outcome()
    assert outcome.status is status and r.learner.submitted == 1
    assert outcome.latency_s == pytest.approx(READ_S + sum(a.latency_s for a in outcome.attempts))
    with pytest.raises(AttributeError):
        outcome.status = Status.FAILED  # type: ignore[misc]
