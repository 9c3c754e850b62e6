"""`python -m proxy serve` on the shipped config answers through its simulated models."""

from __future__ import annotations

from pathlib import Path

import openai
from support.paths import REPO
from support.servers import ProxyProcess

SHIPPED_BASE = "http://127.0.0.1:4000/simulator/v1"


def test_serve_shipped_config_routes_to_a_sim_model(tmp_path: Path) -> None:
    shipped = (REPO / "config.yaml").read_text(encoding="utf-8")
    assert SHIPPED_BASE in shipped
    config = tmp_path / "config.yaml"
    server = ProxyProcess(config, cwd=tmp_path, env={"REDIS_URL": ""})
    # The sim models are served by the proxy itself: point them at the port it will listen on.
    config.write_text(shipped.replace(":4000/", f":{server.port}/"), encoding="utf-8")
    with server:
        client = openai.OpenAI(
            base_url=f"{server.url}/v1",
            api_key="unused",
            max_retries=0,
            default_headers={"X-Agent": "newcomer"},
        )
        with client:
            raw = client.chat.completions.with_raw_response.create(
                model="gpt-4o", messages=[{"role": "user", "content": "hello"}]
            )
            ids = [model.id for model in client.models.list()]
    reply = raw.parse()
    answered = raw.headers["x-model-manager-model"]
    assert answered in ("sim-fast", "sim-smart", "sim-flaky")
    assert reply.choices[0].message.content == f"Simulated reply from {answered}."
    assert {"sim-fast", "sim-smart", "sim-flaky", "cheap", "auto"} <= set(ids)
