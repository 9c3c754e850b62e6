"""``POST /v1/responses`` relayed natively vs translated to chat: client latency per request.

One simulator process (no delays: latency, time to first chunk and chunk interval 0) serves
both ``/v1/responses`` and ``/v1/chat/completions``; one ``model-manager serve`` process
(embedded state, 1 worker) has ``n1`` (``model_info.supported_endpoints`` lists
``/v1/responses``: relayed natively) and ``m2`` (chat-only: translated), both on that
simulator. Requests are pinned (``X-Model-Manager-Pin``) so each case hits one path, sent one
at a time from one httpx client (keep-alive), JSON and stream (the whole stream read). Printed:
median and p99 wall time per request in ms; the median of the same upstream call sent straight
to the simulator ("upstream alone": the Responses body for n1, the translated chat body for
m2) and the difference ("added": what the proxy adds); and the median of the proxy's own
``x-model-manager-overhead-ms`` (time outside upstream calls; for a translated answer the
translation runs inside the attempt, so it counts as upstream time there). Cases are
interleaved round-robin so drift on a shared machine hits each alike.

Usage: python bench/responses_relay.py [--n 400]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.servers import ProxyProcess, free_port

SIMULATOR = """
import uvicorn
from proxy.simulator.app import create_simulator_app
from proxy.simulator.profile import SimProfile
profile = SimProfile(latency_ms=0, ttft_ms=0, chunk_interval_ms=0)
uvicorn.run(create_simulator_app(default_profile=profile), host="127.0.0.1", port={port}, log_level="warning")
"""
CASES = [
    ("native", "n1", False),
    ("translated", "m2", False),
    ("native", "n1", True),
    ("translated", "m2", True),
]


def config(upstream: str) -> dict[str, object]:
    def entry(name: str, **info: object) -> dict[str, object]:
        params = {"model": f"openai/{name}", "api_base": upstream, "api_key": "sk-bench"}
        return {"model_name": name, "litellm_params": params, **({"model_info": info} if info else {})}

    return {
        "model_list": [
            entry("n1", supported_endpoints=["/v1/chat/completions", "/v1/responses"]),
            entry("m2"),
        ],
        "router": {"policy": "fixed"},
    }


def wait_up(url: str, deadline_s: float = 30.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


PROMPT = "Say hello in a few words"


def one(client: httpx.Client, model: str, stream: bool) -> tuple[float, float]:
    """(wall ms, proxy overhead ms) of one pinned Responses request."""
    body = {"model": model, "input": PROMPT, "stream": stream}
    headers = {"X-Agent": "bench", "X-Model-Manager-Pin": "true"}
    began = time.perf_counter()
    with client.stream("POST", "/v1/responses", json=body, headers=headers) as response:
        response.read()
        assert response.status_code == 200, response.text
        overhead = float(response.headers["x-model-manager-overhead-ms"])
    return (time.perf_counter() - began) * 1000, overhead


def alone(client: httpx.Client, model: str, stream: bool) -> float:
    """Wall ms of the call the proxy makes, sent straight to the simulator."""
    if model == "n1":
        path, body = "/v1/responses", {"model": model, "input": PROMPT, "stream": stream}
    else:
        messages = [{"role": "user", "content": PROMPT}]
        path, body = "/v1/chat/completions", {"model": model, "messages": messages, "stream": stream}
        if stream:
            body["stream_options"] = {"include_usage": True}
    began = time.perf_counter()
    with client.stream("POST", path, json=body) as response:
        response.read()
        assert response.status_code == 200, response.text
    return (time.perf_counter() - began) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="requests per case")
    args = parser.parse_args()
    port = free_port()
    simulator = subprocess.Popen([sys.executable, "-c", SIMULATOR.format(port=port)])
    try:
        wait_up(f"http://127.0.0.1:{port}/v1/models")
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "config.yaml"
            path.write_text(yaml.safe_dump(config(f"http://127.0.0.1:{port}/v1")))
            with (
                ProxyProcess(path, cwd=folder) as proxy,
                httpx.Client(base_url=proxy.url, timeout=30) as client,
                httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as upstream,
            ):
                run(client, upstream, args.n)
    finally:
        simulator.terminate()
        simulator.wait(10)


def run(client: httpx.Client, upstream: httpx.Client, n: int) -> None:
    for _, model, stream in CASES:  # warm-up: connections, caches
        for _ in range(20):
            one(client, model, stream)
            alone(upstream, model, stream)
    samples: dict[int, list[tuple[float, float]]] = {i: [] for i in range(len(CASES))}
    direct: dict[int, list[float]] = {i: [] for i in range(len(CASES))}
    for _ in range(n):
        for index, (_, model, stream) in enumerate(CASES):
            samples[index].append(one(client, model, stream))
            direct[index].append(alone(upstream, model, stream))
    print(f"POST /v1/responses, {n} requests per case, one at a time (ms)")
    columns = ("median", 8), ("p99", 8), ("upstream alone", 15), ("added", 7), ("overhead hdr", 13)
    print(f"{'path':<11} {'mode':<7} " + " ".join(f"{name:>{width}}" for name, width in columns))
    for index, (name, _, stream) in enumerate(CASES):
        walls = sorted(wall for wall, _ in samples[index])
        overheads = [overhead for _, overhead in samples[index]]
        p99 = walls[min(len(walls) - 1, int(len(walls) * 0.99))]
        mode = "stream" if stream else "json"
        median, overhead = statistics.median(walls), statistics.median(overheads)
        base = statistics.median(direct[index])
        figures = f"{median:>8.2f} {p99:>8.2f} {base:>15.2f} {median - base:>7.2f} {overhead:>13.3f}"
        print(f"{name:<11} {mode:<7} {figures}")


if __name__ == "__main__":
    main()
