"""Load: wrk (C, keep-alive, Lua for POST body + headers) and a sequential TTFT probe."""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

WRK_MARK = "WRKJSON "
HEADERS = {
    "Content-Type": "application/json",
    "X-Agent": "bench",
    "Authorization": "Bearer sk-bench",
}
PROXY_HEADERS = ("x-model-manager-model", "x-model-manager-attempts", "x-model-manager-overhead-ms")

WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d,"max":%d}\\n',
    "WRKJSON ", summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True)
class WrkResult:
    rps: float
    requests: int
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float


def request_body(*, model: str, stream: bool) -> str:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "Say hello in one short sentence."}],
        "max_tokens": 32,
        "stream": stream,
    }
    return json.dumps(body, separators=(",", ":"))


def write_wrk_script(path: Path, body: str) -> Path:
    lines = ['wrk.method = "POST"', f"wrk.body = {_lua_string(body)}"]
    lines += [f'wrk.headers["{name}"] = "{value}"' for name, value in HEADERS.items()]
    path.write_text("\n".join(lines) + "\n" + WRK_DONE)
    return path


def _lua_string(text: str) -> str:
    if "]]" in text:
        raise ValueError("body must not contain ]]")
    return f"[[{text}]]"


def run_wrk(url: str, script: Path, *, connections: int, seconds: float, cpus: str) -> WrkResult:
    argv = ["taskset", "-c", cpus, "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s"]
    argv += ["--timeout", "30s", "--latency", "-s", str(script), url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith(WRK_MARK)), None)
    if line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-500:]} {done.stderr[-500:]}")
    return _wrk_result(json.loads(line[len(WRK_MARK) :]))


def _wrk_result(raw: dict[str, int]) -> WrkResult:
    errors = sum(raw[key] for key in ("connect", "read", "write", "status", "timeout"))
    good = max(raw["requests"] - raw["status"], 0)
    return WrkResult(
        rps=good / (raw["duration_us"] / 1e6),
        requests=raw["requests"],
        errors=errors,
        p50_ms=raw["p50"] / 1000,
        p90_ms=raw["p90"] / 1000,
        p99_ms=raw["p99"] / 1000,
    )


@dataclass(frozen=True)
class TtftResult:
    p50_ms: float
    p90_ms: float
    failures: int
    headers: dict[str, str]


def probe_ttft(url: str, body: str, *, requests: int) -> TtftResult:
    """Sequential streamed requests on one keep-alive connection: send to first `data:` bytes.

    A raw socket (TCP_NODELAY, request written in one send) so the probe adds no client-side
    delay of its own; the response is read to its end before the next request.
    """
    parts = urlsplit(url)
    request = _raw_request(parts.path, parts.netloc, body.encode())
    samples: list[float] = []
    headers: dict[str, str] = {}
    with _connect(parts.hostname or "127.0.0.1", parts.port or 80) as sock:
        for _ in range(requests):
            try:
                elapsed, headers = _one_ttft(sock, request)
            except (OSError, ValueError):
                break
            samples.append(elapsed)
    return TtftResult(
        p50_ms=_quantile(samples, 0.5),
        p90_ms=_quantile(samples, 0.9),
        failures=requests - len(samples),
        headers={k: v for k, v in headers.items() if k in PROXY_HEADERS},
    )


def _connect(host: str, port: int) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _raw_request(path: str, host: str, body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in HEADERS.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _one_ttft(sock: socket.socket, request: bytes) -> tuple[float, dict[str, str]]:
    start = time.perf_counter()
    sock.sendall(request)
    buffered = b""
    while b"\r\n\r\n" not in buffered:
        buffered += _recv(sock)
    head, rest = buffered.split(b"\r\n\r\n", 1)
    status, headers = _parse_head(head)
    while b"data:" not in rest:
        rest += _recv(sock)
    elapsed = (time.perf_counter() - start) * 1000
    _drain(sock, rest, headers)
    if status != 200:
        raise ValueError(f"HTTP {status}")
    return elapsed, headers


def _recv(sock: socket.socket) -> bytes:
    chunk = sock.recv(65536)
    if not chunk:
        raise ValueError("connection closed")
    return chunk


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    status_line, *lines = head.decode("latin-1").split("\r\n")
    pairs = (line.split(":", 1) for line in lines if ":" in line)
    return int(status_line.split()[1]), {k.strip().lower(): v.strip() for k, v in pairs}


def _drain(sock: socket.socket, body: bytes, headers: dict[str, str]) -> None:
    """Read the rest of the response: Content-Length bytes, or up to the last chunk."""
    if "content-length" in headers:
        while len(body) < int(headers["content-length"]):
            body += _recv(sock)
        return
    while not body.endswith(b"0\r\n\r\n"):
        body += _recv(sock)


def _quantile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[round(q * 100) - 1]
