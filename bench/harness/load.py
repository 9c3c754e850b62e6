"""Load: wrk (C, keep-alive, Lua for POST body + headers) and a sequential TTFT probe."""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

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
        raise RuntimeError(
            f"wrk failed ({done.returncode}): {done.stdout[-500:]} {done.stderr[-500:]}"
        )
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
    """Sequential streaming requests: time from send to the first SSE `data:` bytes."""
    samples: list[float] = []
    failures = 0
    headers: dict[str, str] = {}
    with httpx.Client(timeout=30.0) as client:
        for _ in range(requests):
            elapsed, seen = _one_ttft(client, url, body)
            if elapsed is None:
                failures += 1
            else:
                samples.append(elapsed)
                headers = seen
    return TtftResult(
        p50_ms=_quantile(samples, 0.5),
        p90_ms=_quantile(samples, 0.9),
        failures=failures,
        headers=headers,
    )


def _one_ttft(client: httpx.Client, url: str, body: str) -> tuple[float | None, dict[str, str]]:
    start = time.perf_counter()
    try:
        with client.stream("POST", url, content=body, headers=HEADERS) as response:
            first: float | None = None
            buffered = b""
            for chunk in response.iter_raw():
                buffered += chunk
                if first is None and b"data:" in buffered:
                    first = time.perf_counter() - start
            ok = response.status_code == 200
            seen = {k: v for k, v in response.headers.items() if k in PROXY_HEADERS}
    except httpx.HTTPError:
        return None, {}
    return (first * 1000 if ok and first is not None else None), seen


def _quantile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[round(q * 100) - 1]
