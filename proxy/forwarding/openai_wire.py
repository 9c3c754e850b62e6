"""Which deployments speak the OpenAI wire format and can be called directly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from proxy.config.endpoints import OPENAI_PREFIX, wire_problem
from proxy.config.settings import Arm

OPENAI_BASE = "https://api.openai.com/v1"


@dataclass(frozen=True, slots=True)
class WireTarget:
    """Where and how to call one OpenAI-wire deployment."""

    url: str
    model: str
    headers: dict[str, str]
    secrets: tuple[str, ...]
    embeddings_url: str = ""
    responses_url: str = ""


def openai_wire_target(arm: Arm) -> WireTarget | None:
    """How to call ``arm`` directly: an ``openai/`` model with an api_key and no litellm-only
    params (those, and every other provider, go through litellm); else None."""
    params = arm.params
    if wire_problem(params) is not None:
        return None
    key = str(params["api_key"])
    base = str(params.get("api_base") or OPENAI_BASE).rstrip("/")
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    headers.update(_extra_headers(params.get("extra_headers")))
    model = arm.litellm_model[len(OPENAI_PREFIX) :]
    return WireTarget(
        f"{base}/chat/completions", model, headers, (key,), f"{base}/embeddings", f"{base}/responses"
    )


def _extra_headers(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
