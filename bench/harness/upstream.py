"""Fake LLM upstream served by stock nginx: fixed OpenAI and Anthropic bodies, JSON or SSE.

nginx cannot branch on the request body before reading it, but proxy_set_header values are
evaluated after the body is read. So a front server reads the body, maps `"stream": true` in it
to a header, and proxies (keep-alive, over a unix socket) to a back server that `return`s the
fixed body chosen by that header. Every target (direct, our proxy, LiteLLM) pays the same hop.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # run.py imports this module as harness.upstream, world.py as bench.harness.upstream
    from harness.procs import Child, Supervisor

REPLY_WORDS = ["Hello", "!", " This", " is", " a", " fixed", " benchmark", " reply", "."]
CREATED = 1700000000


@dataclass(frozen=True)
class Upstream:
    port: int
    child: Child

    @property
    def openai_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/anthropic"


def _data(payload: dict[str, Any], event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(payload, separators=(',', ':'))}\n\n"


def openai_json() -> str:
    return json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": CREATED,
            "model": "fast-a",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(REPLY_WORDS)},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
        },
        separators=(",", ":"),
    )


def _openai_chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": CREATED}
    return _data({**base, "model": "fast-a", "choices": [choice], **extra})


def openai_sse() -> str:
    chunks = [_openai_chunk({"role": "assistant", "content": ""})]
    chunks += [_openai_chunk({"content": word}) for word in REPLY_WORDS]
    usage = {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}
    chunks.append(_openai_chunk({}, "stop", usage=usage))
    return "".join(chunks) + "data: [DONE]\n\n"


def anthropic_json() -> str:
    return json.dumps(
        {
            "id": "msg_bench",
            "type": "message",
            "role": "assistant",
            "model": "claude-a",
            "content": [{"type": "text", "text": "".join(REPLY_WORDS)}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 12, "output_tokens": 9},
        },
        separators=(",", ":"),
    )


def anthropic_sse() -> str:
    message: dict[str, Any] = {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": "claude-a",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 1},
    }
    events = [
        _data({"type": "message_start", "message": message}, "message_start"),
        _data(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            "content_block_start",
        ),
        _data({"type": "ping"}, "ping"),
    ]
    events += [
        _data(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}},
            "content_block_delta",
        )
        for w in REPLY_WORDS
    ]
    events += [
        _data({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        _data(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 9},
            },
            "message_delta",
        ),
        _data({"type": "message_stop"}, "message_stop"),
    ]
    return "".join(events)


def models_json() -> str:
    names = ["fast-a", "fast-b", "fast-c"]
    data = [{"id": n, "object": "model", "created": CREATED, "owned_by": "bench"} for n in names]
    return json.dumps({"object": "list", "data": data}, separators=(",", ":"))


def _quoted(body: str) -> str:
    """A body as an nginx single-quoted string: `\\n` escapes, no variables."""
    if any(bad in body for bad in ("$", "\\", "'")):
        raise ValueError("fixture body must not contain $, backslash or single quote")
    return "'" + body.replace("\n", "\\n") + "'"


def _fixed(path: str, content_type: str, body: str) -> str:
    return f"    location = {path} {{ default_type {content_type}; return 200 {_quoted(body)}; }}\n"


def nginx_conf(workdir: Path, port: int) -> str:
    sock = workdir / "nginx-back.sock"
    temp = "".join(
        f"  {kind}_temp_path {workdir}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    fixed = (
        _fixed("/_json/openai", "application/json", openai_json())
        + _fixed("/_sse/openai", "text/event-stream", openai_sse())
        + _fixed("/_json/anthropic", "application/json", anthropic_json())
        + _fixed("/_sse/anthropic", "text/event-stream", anthropic_sse())
        + _fixed("/v1/models", "application/json", models_json())
    )
    user = "user root;\n" if os.geteuid() == 0 else ""
    return f"""{user}worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log warn;
events {{ worker_connections 4096; multi_accept on; }}
http {{
  access_log off;
{temp}  keepalive_requests 10000000;
  keepalive_timeout 300s;
  client_body_buffer_size 1m;
  client_body_in_single_buffer on;
  client_max_body_size 8m;
  map $request_body $mm_mode {{ '~"stream"\\s*:\\s*true' sse; default json; }}
  upstream mm_back {{ server unix:{sock}; keepalive 256; }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{
      proxy_pass http://mm_back;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-MM-Mode $mm_mode;
    }}
  }}
  server {{
    listen unix:{sock};
    location = /v1/chat/completions {{ rewrite ^ /_$http_x_mm_mode/openai last; }}
    location = /anthropic/v1/messages {{ rewrite ^ /_$http_x_mm_mode/anthropic last; }}
{fixed}    location / {{ return 404; }}
  }}
}}
"""


def start_nginx(sup: Supervisor, workdir: Path, cpus: str) -> Upstream:
    from harness.procs import free_port, wait_port

    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(nginx_conf(workdir, port))
    argv = ["nginx", "-p", str(workdir), "-c", str(conf), "-g", "daemon off;"]
    child = sup.start("nginx", argv, cpus=cpus)
    wait_port(child, port, timeout=10)
    return Upstream(port, child)
