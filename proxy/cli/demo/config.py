"""The demo's built-in world: four simulated models, three agents whose best models differ.

- ``support-bot`` (streamed chat, scored mostly on speed) starts on ``sim-turbo``, the
  fastest model; halfway through ``sim-turbo`` starts failing (OUTAGE) and the agent moves
  to ``sim-fast``.
- ``extractor`` asks for JSON (``response_format``) and is scored on quality: ``sim-fast``
  and ``sim-mini`` are sloppy with JSON, so ``sim-smart`` wins.
- ``summarizer`` sends long transcripts and is scored mostly on cost: ``sim-mini`` wins.

The sim models are served by the proxy itself under ``/simulator``, so the demo needs no
key and no network; ``config_document(port, state_file)`` is the config.yaml equivalent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

AGENT_MODELS: Mapping[str, tuple[str, ...]] = {
    "support-bot": ("sim-turbo", "sim-fast", "sim-smart"),
    "extractor": ("sim-fast", "sim-mini", "sim-smart"),
    "summarizer": ("sim-mini", "sim-fast", "sim-smart"),
}
EXPECTED_BEST: Mapping[str, str] = {
    "support-bot": "sim-fast",
    "extractor": "sim-smart",
    "summarizer": "sim-mini",
}
"""Each agent's best model once the outage has started (what its shares converge to)."""

FAILING_MODEL = "sim-turbo"
OUTAGE: Mapping[str, Any] = {"latency_ms": 30, "ttft_ms": 15, "failure_rate": 0.9, "fail_status": 503}
"""``sim-turbo``'s profile from halfway on: 503 on 90% of calls."""

PROFILES: Mapping[str, Mapping[str, Any]] = {
    "sim-turbo": {"latency_ms": 30, "ttft_ms": 15},
    "sim-fast": {"latency_ms": 100, "ttft_ms": 40, "failure_rate": 0.03, "fail_status": 503,
                 "bad_json_rate": 0.8},
    "sim-smart": {"latency_ms": 450, "ttft_ms": 200},
    "sim-mini": {"latency_ms": 250, "ttft_ms": 100, "bad_json_rate": 0.8},
}
PRICES: Mapping[str, tuple[float, float]] = {
    "sim-turbo": (0.000002, 0.000008),
    "sim-fast": (0.0000015, 0.000006),
    "sim-smart": (0.000005, 0.00002),
    "sim-mini": (0.00000002, 0.00000008),
}
"""USD per input and output token."""

REWARDS: Mapping[str, Mapping[str, float]] = {
    "support-bot": {"quality": 0.2, "latency": 0.8, "cost": 0.0, "latency_target_s": 0.3,
                    "ttft_target_s": 0.1},
    "extractor": {"quality": 0.9, "latency": 0.1, "cost": 0.0},
    "summarizer": {"quality": 0.3, "latency": 0.0, "cost": 0.7, "cost_target_usd": 0.0002},
}


def config_document(port: int, state_file: str) -> dict[str, Any]:
    """The demo's config (config.yaml shape) for a proxy listening on 127.0.0.1:``port``."""
    return {
        "model_list": [_model(name, port) for name in PROFILES],
        "simulator": {"models": {name: dict(fields) for name, fields in PROFILES.items()}},
        "router": {"policy": "thompson", "exploration_rate": 0.0, "half_life_s": 120, "max_attempts": 3},
        "agents": {
            agent: {"models": list(models), "reward": dict(REWARDS[agent])}
            for agent, models in AGENT_MODELS.items()
        },
        "server": {"state_file": state_file},
    }


def _model(name: str, port: int) -> dict[str, Any]:
    """One model_list entry served by the proxy's own simulator."""
    price_in, price_out = PRICES[name]
    return {
        "model_name": name,
        "litellm_params": {
            "model": f"openai/{name}",
            "api_base": f"http://127.0.0.1:{port}/simulator/v1",
            "api_key": "sim-not-a-secret",
        },
        "model_info": {"input_cost_per_token": price_in, "output_cost_per_token": price_out},
    }
