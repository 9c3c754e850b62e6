"""Wildcard ``model_list`` entries, expanded from their upstream's ``GET /v1/models``.

LiteLLM's shape: ``model_name: "*"`` (or ``"prefix/*"``) with ``litellm_params.model:
"openai/*"`` and an ``api_base``. Each model id X the upstream lists becomes one entry named
X (or ``prefix/X``) forwarded as ``openai/X``, with the wildcard entry's other params and
``model_info``. ``expand_wildcards`` runs on the parsed YAML before validation, whenever the
config file is loaded (at start and at every reload). An upstream that cannot be listed
contributes no model (logged); the config is an error only if no model is left at all.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

from proxy.config.reader import ConfigError
from proxy.wire.names import is_valid_name

log = logging.getLogger("model_manager.discovery")
LIST_TIMEOUT_S = 5.0
ENV_PREFIX = "os.environ/"

ListModels = Callable[[str, str | None], list[str]]
"""Model ids an OpenAI-compatible ``api_base`` lists, given its API key (may raise)."""


def list_model_ids(api_base: str, api_key: str | None) -> list[str]:
    """``GET {api_base}/models``'s ids (httpx, blocking; call it off the event loop)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    response = httpx.get(f"{api_base.rstrip('/')}/models", headers=headers, timeout=LIST_TIMEOUT_S)
    response.raise_for_status()
    return [str(item["id"]) for item in response.json()["data"]]


def is_wildcard(entry: object) -> bool:
    return (
        isinstance(entry, Mapping) and isinstance(entry.get("model_name"), str) and "*" in entry["model_name"]
    )


def expand_wildcards(data: object, list_models: ListModels = list_model_ids) -> object:
    """``data`` with every wildcard ``model_list`` entry replaced by the models it lists."""
    if not isinstance(data, Mapping) or not isinstance(data.get("model_list"), list):
        return data
    entries: list[Any] = []
    for index, entry in enumerate(data["model_list"]):
        entries.extend(
            _expanded(f"model_list[{index}]", entry, list_models) if is_wildcard(entry) else [entry]
        )
    return {**data, "model_list": entries}


def has_wildcards(path: str | Path) -> bool:
    """Whether the config file at ``path`` has a wildcard entry (False if unreadable)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False
    entries = data.get("model_list") if isinstance(data, Mapping) else None
    return isinstance(entries, list) and any(is_wildcard(entry) for entry in entries)


def _expanded(path: str, entry: Mapping[str, Any], list_models: ListModels) -> list[dict[str, Any]]:
    pattern: str = entry["model_name"]
    params = entry.get("litellm_params")
    if not pattern.endswith("*") or pattern.count("*") != 1:
        raise ConfigError(f"{path}.model_name: a wildcard is '*' or 'prefix/*', got {pattern!r}")
    if not isinstance(params, Mapping) or not isinstance(params.get("api_base"), str):
        raise ConfigError(
            f"{path}.litellm_params.api_base: a wildcard entry ({pattern!r}) needs an api_base "
            "to list its models from (GET /v1/models)"
        )
    model = params.get("model")
    if not isinstance(model, str) or not model.endswith("*"):
        raise ConfigError(
            f"{path}.litellm_params.model: a wildcard entry needs a model ending in '*' (e.g. openai/*)"
        )
    api_base = params["api_base"]
    try:
        ids = list_models(api_base, api_key_of(params.get("api_key")))
    except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
        log.warning("%s: cannot list models at %s/models (%s): no model from it", path, api_base, exc)
        return []
    info = {k: v for k, v in (entry.get("model_info") or {}).items() if k != "id"}
    found = []
    for model_id in ids:
        name = pattern[:-1] + model_id
        if not is_valid_name(name):
            log.warning("%s: skipping listed model %r (not a valid model name)", path, model_id)
            continue
        found.append(
            {
                "model_name": name,
                "litellm_params": {**params, "model": model[:-1] + model_id},
                **({"model_info": info} if info else {}),
            }
        )
    log.info("%s: %d models from %s/models", path, len(found), api_base)
    return found


def api_key_of(value: object) -> str | None:
    """An ``api_key`` param's value (``os.environ/NAME`` read from the environment)."""
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        return os.environ.get(value.removeprefix(ENV_PREFIX))
    return value if isinstance(value, str) else None
