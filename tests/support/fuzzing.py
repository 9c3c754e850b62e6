"""Fuzz runs against a FuzzTarget: schemathesis cases from GET /openapi.json, and hypothesis
strategies of hostile headers and bodies sent as raw HTTP/1.1 bytes.

Every response is checked: no 5xx, every 4xx OpenAI-shaped (``{"error": {"message", "type",
"param", "code"}}``), and a rejected request leaves the stored state exactly as it was. Runs
collect findings (one per kind, operation and status, with the first request that showed it)
instead of stopping at the first, so a bench run can print them all.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import positive_data_acceptance

from proxy.http.openapi import openapi_document
from proxy.pipeline.request import AGENT_HEADER, OPTIONAL_FIELDS, PIN_HEADER, WORKFLOW_HEADER
from support.fuzz_target import AUTH, KEY, MAX_BODY, FuzzTarget

GOOD_BODY = {"model": "m1", "messages": [{"role": "user", "content": "hi"}]}
ERROR_FIELDS = ("message", "type", "param", "code")


@dataclass(frozen=True)
class Finding:
    kind: str
    where: str
    status: int
    detail: str
    request: str


@dataclass
class Report:
    """Case count and findings (deduplicated by kind, where and status)."""

    cases: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    findings: dict[tuple[str, str, int], Finding] = field(default_factory=dict)

    def add(self, finding: Finding) -> None:
        self.findings.setdefault((finding.kind, finding.where, finding.status), finding)

    def lines(self) -> list[str]:
        return [
            f"[{f.kind}] {f.where} -> {f.status}: {f.detail}\n    request: {f.request}"
            for f in self.findings.values()
        ]


def error_shape_problem(status: int, content_type: str, body: bytes) -> str | None:
    """Why an error response is not OpenAI-shaped, or None when it is."""
    if not content_type.startswith("application/json"):
        return f"content-type {content_type!r}"
    try:
        error = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return f"body is not {{'error': ...}}: {body[:200]!r}"
    if not isinstance(error, dict) or any(name not in error for name in ERROR_FIELDS):
        return f"error lacks one of {ERROR_FIELDS}: {error!r}"[:300]
    if not (isinstance(error["message"], str) and isinstance(error["type"], str)):
        return "message and type must be strings"
    if not all(error[name] is None or isinstance(error[name], str) for name in ("param", "code")):
        return "param and code must be strings or null"
    return None


def check_answer(
    target: FuzzTarget,
    report: Report,
    *,
    where: str,
    request: str,
    answer: tuple[int, str, bytes],
    before: tuple[object, ...],
) -> tuple[object, ...]:
    """The three properties for one answer; returns the state to compare the next request with."""
    status, content_type, body = answer
    report.statuses[status] = report.statuses.get(status, 0) + 1
    if status >= 500:
        report.add(Finding("server_error", where, status, body[:300].decode(errors="replace"), request))
    after = target.settled_state()
    if status >= 400:
        problem = error_shape_problem(status, content_type, body)
        if problem is not None:
            report.add(Finding("error_not_openai_shaped", where, status, problem, request))
    if 400 <= status < 500 and after != before:
        detail = f"stored state changed; redis keys now {target.redis_keys()[:20]}"
        report.add(Finding("rejected_request_wrote", where, status, detail, request))
    return after


def fuzz_settings(cases: int, seed: int) -> Callable[[Any], Any]:
    """``cases`` generated examples, deterministic for ``seed``, no database, no shrinking."""

    def apply(test: Any) -> Any:
        configured = settings(
            max_examples=cases,
            database=None,
            deadline=None,
            derandomize=False,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )(test)
        return hypothesis.seed(seed)(configured)

    return apply


# --- schemathesis ---------------------------------------------------------------------------------


def run_schemathesis(target: FuzzTarget, report: Report, cases: int, seed: int) -> None:
    """``cases`` positive and negative cases over every described operation."""
    # The dashboard's pages are HTML for a person (their errors too); its JSON API is fuzzed.
    # Bodies are described as far as the proxy checks them, so a schema-valid case may still be
    # refused by an upstream (positive_data_acceptance is not checked); every other check is.
    schema = schemathesis.openapi.from_dict(openapi_document()).exclude(path_regex="^/dashboard(?!/api)")
    schema.config.update(headers=AUTH)
    strategy = st.one_of(schema.as_strategy(generation_mode=mode) for mode in schemathesis.GenerationMode)
    state = [target.settled_state()]

    @fuzz_settings(cases, seed)
    @hypothesis.given(case=strategy)
    def one(case: schemathesis.Case) -> None:
        where = f"{case.method} {case.operation.path}"
        try:
            response = case.call(base_url=target.url, timeout=30)
        except ValueError:
            return  # requests refused to send it (e.g. a header it cannot encode): nothing reached us
        report.cases += 1
        request = case.as_curl_command(headers={"Authorization": "Bearer ***"})
        answer = (response.status_code, response.headers.get("content-type", [""])[0], response.content)
        state[0] = check_answer(target, report, where=where, request=request, answer=answer, before=state[0])
        try:
            case.validate_response(response, headers=AUTH, excluded_checks=[positive_data_acceptance])
        except FailureGroup as group:
            for failure in group.exceptions:
                detail = f"{failure.message[:300]} | answer: {response.content[:300]!r}"
                report.add(Finding(failure.title, where, response.status_code, detail, request))

    one()


# --- hostile headers and bodies ---------------------------------------------------------------------

HEADER_NAMES = (
    AGENT_HEADER,
    WORKFLOW_HEADER,
    PIN_HEADER,
    "content-type",
    "accept",
    "x-request-id",
    "user-agent",
)


def header_values() -> st.SearchStrategy[bytes]:
    control = st.binary(min_size=1, max_size=40).map(lambda b: b"a" + b.replace(b"\r\n", b"\n"))
    unicode = st.text(min_size=1, max_size=80).map(lambda t: t.encode("utf-8", "surrogatepass"))
    huge = st.integers(1_000, 200_000).map(lambda n: b"a" * n)
    plausible = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:@/ -]{0,70}", fullmatch=True).map(str.encode)
    return st.one_of(control, unicode, huge, plausible, st.just(b""))


def hostile_headers() -> st.SearchStrategy[list[tuple[bytes, bytes]]]:
    """Known and random header names with control characters, unicode, huge or empty values;
    some repeated (duplicates with different values)."""
    name = st.one_of(
        st.sampled_from(HEADER_NAMES),
        st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,30}", fullmatch=True),
    ).map(str.encode)
    plausible = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,70}", fullmatch=True).map(str.encode)
    values = st.one_of(plausible, plausible, header_values())
    pairs = st.lists(st.tuples(name, values), min_size=0, max_size=5)
    return pairs.flatmap(lambda items: st.permutations(items + items[: len(items) // 2]))


def json_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=12,
    )


def _deep(depth: int, kind: str) -> bytes:
    if kind == "array":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


def hostile_bodies() -> st.SearchStrategy[bytes]:
    """Malformed JSON, wrong types for each checked field, deep nesting, oversized, odd unicode."""
    fields = st.sampled_from([*OPTIONAL_FIELDS, "messages"])
    wrong_type = st.tuples(fields, json_values()).map(lambda fv: _dumps({**GOOD_BODY, fv[0]: fv[1]}))
    message = st.dictionaries(st.sampled_from(["role", "content", "name", "tool_calls"]), json_values())
    messages = st.lists(message, max_size=3).map(lambda ms: _dumps({"model": "m1", "messages": ms}))
    truncated = st.integers(1, len(_dumps(GOOD_BODY)) - 1).map(lambda n: _dumps(GOOD_BODY)[:n])
    deep = st.tuples(st.integers(50, 20_000), st.sampled_from(["array", "object"])).map(lambda d: _deep(*d))
    deep_message = st.integers(50, 3_000).map(
        lambda d: b'{"messages":[{"role":"user","content":' + _deep(d, "array") + b"}]}"
    )
    oversized = st.integers(MAX_BODY - 200, MAX_BODY * 3).map(
        lambda n: _dumps({**GOOD_BODY, "messages": [{"role": "user", "content": "x" * n}]})
    )
    surrogate = st.sampled_from(
        [
            b'{"messages":[{"role":"user","content":"\\ud800"}]}',
            b'{"messages":[{"role":"\\u0000","content":"a"}]}',
            b'{"messages":[{"role":"user","content":"a"}],"model":"\\udfff"}',
            b"\xef\xbb\xbf" + _dumps(GOOD_BODY),
            _dumps(GOOD_BODY).replace(b"hi", b"\xff"),
        ]
    )
    return st.one_of(
        st.binary(max_size=200),
        wrong_type,
        messages,
        truncated,
        deep,
        deep_message,
        oversized,
        surrogate,
        st.just(_dumps(GOOD_BODY)),
    )


TARGET_PATHS = ("/v1/chat/completions", "/chat/completions", "/v1/feedback", "/v1/workflows/wf-1/finish")


def raw_request(path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1".encode(),
        b"Host: 127.0.0.1",
        f"Authorization: Bearer {KEY}".encode(),
        f"Content-Length: {len(body)}".encode(),
        b"Connection: close",
    ]
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def send_raw(url: str, data: bytes) -> tuple[int, str, bytes]:
    """Send ``data`` on a new connection; (status, content-type, body) of the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        # the server may answer and close before reading everything: read its answer then
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.getheader("content-type", ""), response.read()


def describe(path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> str:
    shown = [(n.decode(errors="replace"), v[:60] + (b"..." if len(v) > 60 else b"")) for n, v in headers]
    return f"POST {path} headers={shown} body[{len(body)}]={body[:120]!r}"


def run_hostile(target: FuzzTarget, report: Report, cases: int, seed: int) -> None:
    """``cases`` raw requests with hostile headers and bodies."""
    state = [target.settled_state()]

    @fuzz_settings(cases, seed)
    @hypothesis.given(path=st.sampled_from(TARGET_PATHS), headers=hostile_headers(), body=hostile_bodies())
    def one(path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        report.cases += 1
        request = describe(path, headers, body)
        try:
            answer = send_raw(target.url, raw_request(path, headers, body))
        except (OSError, http.client.HTTPException) as exc:
            report.add(Finding("no_answer", f"POST {path}", 0, repr(exc), request))
            return
        state[0] = check_answer(
            target, report, where=f"POST {path}", request=request, answer=answer, before=state[0]
        )

    one()
