"""``model_info.supported_endpoints`` (LiteLLM's key): which deployments speak the Responses API.

A deployment that lists ``/v1/responses`` there is sent ``POST /v1/responses`` requests as
they came (only ``model`` rewritten) at ``{api_base}/responses``; every other deployment
serves them translated to chat completions. The native relay is an OpenAI-wire call, so it
needs what the direct path needs (``wire_problem``): an ``openai/`` model with an
``api_key`` and no litellm-only params. Anything else listing ``/v1/responses`` is a
ConfigError naming the key and the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proxy.config.reader import ConfigError, Section

SUPPORTED_ENDPOINTS = "supported_endpoints"
RESPONSES_ENDPOINTS = ("/v1/responses", "/responses")
WIRE_PARAMS = frozenset({"model", "api_base", "api_key", "extra_headers"})
"""The ``litellm_params`` an OpenAI-wire deployment may have (anything else needs litellm)."""
OPENAI_PREFIX = "openai/"


def wire_problem(params: Mapping[str, Any]) -> str | None:
    """Why this deployment cannot be called over the OpenAI wire directly, or None when it can."""
    model = str(params.get("model", ""))
    if not model.startswith(OPENAI_PREFIX):
        return f"its model {model!r} is not an openai/ model"
    extra = sorted(set(params) - WIRE_PARAMS)
    if extra:
        return f"litellm_params.{extra[0]} needs litellm (allowed: {', '.join(sorted(WIRE_PARAMS))})"
    key = params.get("api_key")
    if not isinstance(key, str) or not key:
        return "it has no api_key (set any value for a server that takes none)"
    return None


def native_responses(info: Section, params: Mapping[str, Any]) -> bool:
    """Whether ``model_info.supported_endpoints`` lists the Responses API; ConfigError when the
    value is not a list of paths, or when the deployment cannot be relayed natively."""
    endpoints = info.string_list(SUPPORTED_ENDPOINTS)
    if endpoints is None:
        return False
    path = info.key_path(SUPPORTED_ENDPOINTS)
    for endpoint in endpoints:
        if not endpoint.startswith("/"):
            raise ConfigError(
                f"{path}: {endpoint!r} is not an endpoint path (e.g. /v1/chat/completions, /v1/responses)"
            )
    if not any(endpoint.rstrip("/") in RESPONSES_ENDPOINTS for endpoint in endpoints):
        return False
    problem = wire_problem(params)
    if problem is not None:
        raise ConfigError(
            f"{path}: /v1/responses is relayed natively only to OpenAI-wire deployments, and {problem}; "
            "remove it to serve Responses requests translated to chat completions"
        )
    return True
