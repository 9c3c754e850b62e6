"""Request spans through a real proxy (uvicorn, fake upstream, openai SDK) into the SDK's
InMemorySpanExporter; and without telemetry, no OpenTelemetry module is imported."""

from __future__ import annotations

import ast
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from support.paths import REPO
from support.proxy_harness import MESSAGES, basic_config
from support.servers import FakeUpstream, UvicornThread
from support.waiting import wait_for

from proxy.app import create_app
from proxy.config.settings import load_config, parse_config
from proxy.http.bad_http import answer as bad_http
from proxy.runtime.state import embedded_state
from storage.embedded.store import MemoryStore

TELEMETRY = {"telemetry": {"enabled": True, "service_name": "mm-test"}}


@pytest.fixture
def traced(fake_upstream: FakeUpstream) -> Iterator[tuple[str, InMemorySpanExporter]]:
    """A proxy (m1 then m2, fixed order) exporting its spans to memory; yields its URL."""
    exporter = InMemorySpanExporter()
    config = parse_config(basic_config(fake_upstream, **TELEMETRY))
    state = embedded_state(config, time.time, MemoryStore())
    app = create_app(config, state=state, rng=random.Random(0), span_exporter=exporter)
    with UvicornThread(app, http=bad_http.protocol()) as server:
        yield server.url, exporter


def _client(url: str, **headers: str) -> Any:
    import openai

    return openai.OpenAI(
        base_url=f"{url}/v1", api_key="unused", max_retries=0, default_headers={"X-Agent": "a", **headers}
    )


def _trees(exporter: InMemorySpanExporter, requests: int) -> list[tuple[ReadableSpan, list[ReadableSpan]]]:
    """(request span, its attempt spans in start order) per request, once all are exported."""
    wait_for(lambda: sum(s.parent is None for s in exporter.get_finished_spans()) >= requests)
    spans = exporter.get_finished_spans()
    roots = [span for span in spans if span.parent is None]
    assert len(roots) == requests
    return [
        (root, sorted((s for s in spans if s.parent is not None and s.parent.span_id == _id(root)),
                      key=lambda s: s.start_time or 0))
        for root in roots
    ]


def _id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def test_a_successful_request_has_one_span_with_the_genai_attributes(traced: Any) -> None:
    url, exporter = traced
    raw = _client(url, **{"X-Workflow": "wf-1"}).chat.completions.with_raw_response.create(
        model="m1", messages=MESSAGES
    )
    completion = raw.parse()
    [(root, attempts)] = _trees(exporter, 1)
    attrs = dict(root.attributes or {})
    assert root.name == "chat m1"
    assert root.kind is SpanKind.SERVER
    assert root.resource.attributes["service.name"] == "mm-test"
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == "m1"
    assert attrs["gen_ai.response.model"] == completion.model
    assert completion.usage is not None
    assert attrs["gen_ai.usage.input_tokens"] == completion.usage.prompt_tokens
    assert attrs["gen_ai.usage.output_tokens"] == completion.usage.completion_tokens
    assert attrs["gen_ai.system"] == attrs["gen_ai.provider.name"] == "openai"
    assert attrs["model_manager.agent"] == "a"
    assert attrs["model_manager.workflow"] == "wf-1"
    assert attrs["model_manager.chosen_model"] == attrs["model_manager.answered_by"] == "m1"
    assert attrs["model_manager.attempts"] == 1
    assert attrs["model_manager.decision_kind"] == raw.headers["x-model-manager-decision"] == "sampled"
    assert attrs["model_manager.status"] == "success"
    assert "error.type" not in attrs
    assert root.status.status_code is StatusCode.UNSET
    [attempt] = attempts
    assert attempt.name == "attempt m1"
    assert attempt.kind is SpanKind.CLIENT
    assert dict(attempt.attributes or {})["model_manager.attempt.outcome"] == "success"


def test_a_fallback_has_a_child_span_per_attempt_inside_the_request_span(
    traced: Any, fake_upstream: FakeUpstream
) -> None:
    url, exporter = traced
    fake_upstream.set_profile("m1", failure_rate=1.0, fail_status=500)
    raw = _client(url).chat.completions.with_raw_response.create(model="auto", messages=MESSAGES)
    completion = raw.parse()
    [(root, attempts)] = _trees(exporter, 1)
    attrs = dict(root.attributes or {})
    assert attrs["model_manager.chosen_model"] == "m1"
    assert attrs["model_manager.answered_by"] == "m2"
    assert attrs["gen_ai.response.model"] == completion.model
    assert attrs["model_manager.attempts"] == 2
    assert attrs["model_manager.decision_kind"] == raw.headers["x-model-manager-decision"] == "fallback"
    assert "model_manager.propensity" in attrs
    assert [a.name for a in attempts] == ["attempt m1", "attempt m2"]
    failed, answered = (dict(a.attributes or {}) for a in attempts)
    assert failed["model_manager.attempt.outcome"] == failed["error.type"] == "server_error"
    assert attempts[0].status.status_code is StatusCode.ERROR
    assert answered["model_manager.attempt.outcome"] == "success"
    assert [failed["model_manager.attempt.index"], answered["model_manager.attempt.index"]] == [0, 1]
    assert all(root.start_time is not None and a.start_time is not None for a in attempts)
    assert root.start_time is not None and root.end_time is not None
    first, second = attempts
    assert first.end_time is not None and second.start_time is not None and second.end_time is not None
    assert root.start_time <= (first.start_time or 0) < first.end_time <= second.start_time
    assert second.start_time < second.end_time <= root.end_time
    wall = time.time_ns()
    assert root.start_time < wall and wall - root.start_time < 60 * 10**9  # mapped to wall time


def test_a_request_where_every_model_fails_has_an_error_span(
    traced: Any, fake_upstream: FakeUpstream
) -> None:
    import openai

    url, exporter = traced
    for model in ("m1", "m2"):
        fake_upstream.set_profile(model, failure_rate=1.0, fail_status=500)
    with pytest.raises(openai.APIStatusError):
        _client(url).chat.completions.create(model="auto", messages=MESSAGES)
    [(root, attempts)] = _trees(exporter, 1)
    attrs = dict(root.attributes or {})
    assert root.status.status_code is StatusCode.ERROR
    assert attrs["error.type"] == "server_error"
    assert attrs["model_manager.status"] == "failed"
    assert "model_manager.answered_by" not in attrs and "gen_ai.response.model" not in attrs
    assert len(attempts) == 2


PROBE = """
import importlib.abc, sys
from starlette.testclient import TestClient

class NoOpenTelemetry(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

if BLOCK:
    sys.meta_path.insert(0, NoOpenTelemetry())
from proxy.app import create_app
from proxy.config.settings import parse_config
with TestClient(create_app(parse_config(CONFIG))) as client:
    reply = client.post("/v1/chat/completions", headers={"X-Agent": "a"},
                        json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]})
    assert reply.status_code == 200, reply.text
print(sorted(name for name in sys.modules if name.startswith(("opentelemetry", "proxy.telemetry"))))
"""


def _probe(config: dict[str, Any], *, block: bool) -> subprocess.CompletedProcess[str]:
    """A fresh process serving one chat request; ``block``: every opentelemetry import fails
    (as when the packages are not installed)."""
    probe = f"BLOCK = {block!r}\nCONFIG = {config!r}\n{PROBE}"
    return subprocess.run(
        [sys.executable, "-c", probe], check=False, cwd=REPO, capture_output=True, text=True, timeout=120
    )


def _imported_by_a_served_request(config: dict[str, Any], *, block: bool) -> list[str]:
    """Modules of OpenTelemetry and of proxy.telemetry loaded by ``_probe``."""
    done = _probe(config, block=block)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded: list[str] = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    return loaded


def test_with_telemetry_off_the_proxy_serves_without_opentelemetry_installed(
    fake_upstream: FakeUpstream, tmp_path: Any
) -> None:
    config = basic_config(fake_upstream, server={"state_file": str(tmp_path / "state.json")})
    assert _imported_by_a_served_request(config, block=True) == []


def test_with_telemetry_on_the_sdk_and_tracing_module_are_loaded(
    fake_upstream: FakeUpstream, tmp_path: Any
) -> None:
    config = basic_config(
        fake_upstream,
        server={"state_file": str(tmp_path / "state.json")},
        telemetry={"enabled": True, "otlp_endpoint": "http://127.0.0.1:9/v1/traces"},
    )
    loaded = _imported_by_a_served_request(config, block=False)
    assert {"proxy.telemetry.tracing", "opentelemetry.sdk.trace"} <= set(loaded)


def test_telemetry_enabled_without_the_packages_stops_the_start_with_a_hint(
    fake_upstream: FakeUpstream, tmp_path: Any
) -> None:
    config = basic_config(
        fake_upstream, server={"state_file": str(tmp_path / "state.json")}, telemetry={"enabled": True}
    )
    done = _probe(config, block=True)
    assert done.returncode != 0
    hint = "telemetry.enabled: needs the OpenTelemetry packages (pip install 'model-manager[otel]')"
    assert hint in done.stderr


def test_after_a_reload_new_models_are_traced_and_a_telemetry_change_waits_for_a_restart(
    fake_upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(basic_config(fake_upstream, ["m1"], **TELEMETRY)))
    exporter = InMemorySpanExporter()
    config = load_config(path)
    state = embedded_state(config, time.time, MemoryStore())
    app = create_app(config, state=state, reload_from=partial(load_config, path), span_exporter=exporter)
    renamed = {"telemetry": {"enabled": True, "service_name": "mm-renamed"}}
    with UvicornThread(app, http=bad_http.protocol()) as server:
        path.write_text(yaml.safe_dump(basic_config(fake_upstream, ["m1", "m3"], **renamed)))
        report = httpx.post(f"{server.url}/admin/reload", timeout=30).json()
        pinned = _client(server.url, **{"X-Model-Manager-Pin": "true"})
        pinned.chat.completions.create(model="m3", messages=MESSAGES)
        [(root, [attempt])] = _trees(exporter, 1)
    assert (report["added"], report["restart_required"]) == (["m3"], ["telemetry"])
    assert root.resource.attributes["service.name"] == "mm-test"  # the running exporter stays
    assert dict(root.attributes or {})["model_manager.answered_by"] == "m3"
    assert dict(root.attributes or {})["gen_ai.system"] == "openai"  # m3's deployment is known
    assert dict(attempt.attributes or {})["gen_ai.provider.name"] == "openai"
