"""Fuzzing a real proxy (uvicorn, fake upstream, real redis-server or the embedded store):
schemathesis cases from GET /openapi.json and hostile raw headers and bodies. No 5xx, every
error OpenAI-shaped, and a rejected (4xx) request leaves the stored state as it was.

A few hundred deterministic cases here; ``bench/fuzz.py --cases 10000`` runs many more.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.fuzz_target import KINDS, FuzzTarget, fuzz_target
from support.fuzzing import Report, run_hostile, run_schemathesis, send_raw
from support.redis_server import RedisServer
from support.servers import FakeUpstream

SCHEMATHESIS_CASES = 200
HOSTILE_CASES = 150
SEED = 14


@pytest.fixture(params=KINDS)
def target(
    request: pytest.FixtureRequest, fake_upstream: FakeUpstream, redis_server: RedisServer, tmp_path: Path
) -> Iterator[FuzzTarget]:
    with fuzz_target(request.param, fake_upstream.url, redis_url=redis_server.url, state_dir=tmp_path) as t:
        yield t


def test_schemathesis_cases_find_nothing(target: FuzzTarget) -> None:
    report = Report()
    run_schemathesis(target, report, SCHEMATHESIS_CASES, SEED)
    assert report.cases >= SCHEMATHESIS_CASES * 0.9
    assert report.statuses.get(200, 0) > 0 and report.statuses.get(400, 0) > 0, report.statuses
    assert report.lines() == []


def test_hostile_headers_and_bodies_find_nothing(target: FuzzTarget) -> None:
    report = Report()
    run_hostile(target, report, HOSTILE_CASES, SEED)
    assert report.cases == HOSTILE_CASES
    assert {200, 400, 413} <= set(report.statuses), report.statuses
    assert report.lines() == []


def test_the_checks_see_a_write_and_a_bad_error(target: FuzzTarget) -> None:
    """The fingerprint changes when an accepted request is learned from (so a rejected one
    that wrote would be caught), and the shape check rejects a non-OpenAI error."""
    from support.fuzzing import error_shape_problem, raw_request

    before = target.settled_state()
    body = b'{"model": "m1", "messages": [{"role": "user", "content": "hi"}]}'
    status, _, _ = send_raw(target.url, raw_request("/v1/chat/completions", [(b"x-agent", b"probe")], body))
    assert status == 200
    assert target.settled_state() != before
    assert error_shape_problem(400, "application/json", b'{"detail": "x"}') is not None
    assert error_shape_problem(400, "text/plain", b"Bad Request") is not None
    assert (
        error_shape_problem(
            400, "application/json", b'{"error": {"message": "m", "type": "t", "param": null, "code": "c"}}'
        )
        is None
    )


def test_findings_stay_fixed(target: FuzzTarget) -> None:
    """Deep nesting orjson parses but cannot re-encode, n out of 1..128, a misspelled query
    parameter: each a 400 naming the problem (they were a 500, an upstream call, a silent no-op)."""
    from support.fuzzing import raw_request

    deep = b'{"messages":[{"role":"user","content":' + b"[" * 300 + b"]" * 300 + b"}]}"
    cases = {
        "invalid_json": deep,
        "n": b'{"messages":[{"role":"user","content":"a"}],"n":3332607}',
        "max_tokens": b'{"messages":[{"role":"user","content":"a"}],"max_tokens":0}',
    }
    for expected, body in cases.items():
        status, _, answer = send_raw(target.url, raw_request("/v1/chat/completions", [], body))
        error = json.loads(answer)["error"]
        assert (status, expected) == (400, error["code"] if expected == "invalid_json" else error["param"])
    typo = target.http.get("/v1/stats", params={"agnet": "a"})
    assert typo.status_code == 400 and typo.json()["error"]["code"] == "unknown_parameter"
