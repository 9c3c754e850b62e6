"""Checks of a deployment's ``litellm_params`` that need no network: the provider prefix and
``api_base``.

Provider names come from the installed litellm's package files, read as text and JSON
(``import litellm`` costs seconds; this costs milliseconds): the ``LlmProviders`` enum in
``litellm/types/utils.py``, the JSON-configured OpenAI-compatible providers in
``litellm/llms/openai_like/providers.json``, and ``provider_endpoints_support_backup.json``.
"""

from __future__ import annotations

import difflib
import importlib.util
import logging
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

log = logging.getLogger("model_manager.config")

ENUM_FILE = ("types", "utils.py")
JSON_FILES = (("llms", "openai_like", "providers.json"), ("provider_endpoints_support_backup.json",))
ENUM_START = "class LlmProviders(str, Enum):"
ENUM_VALUE = re.compile(r'^\s+[A-Z][A-Z0-9_]*\s*=\s*"([^"]+)"', re.MULTILINE)


def litellm_root() -> Path | None:
    """The installed litellm package folder, found without importing it."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def provider_names(root: Path | None = None) -> frozenset[str] | None:
    """Every provider prefix litellm accepts, or None when litellm's files are not found."""
    root = root or litellm_root()
    if root is None:
        return None
    names: set[str] = set()
    try:
        names.update(_enum_values(root.joinpath(*ENUM_FILE).read_text(encoding="utf-8")))
        for parts in JSON_FILES:
            names.update(_json_keys(root.joinpath(*parts)))
    except OSError as exc:
        log.warning("cannot read litellm's provider list (%s): provider prefixes are not checked", exc)
        return None
    return frozenset(names) or None


def _enum_values(source: str) -> set[str]:
    start = source.find(ENUM_START)
    if start < 0:
        return set()
    body = source[start + len(ENUM_START) :].split("\nclass ", 1)[0]
    return set(ENUM_VALUE.findall(body))


def _json_keys(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    try:
        data = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError:
        return set()
    table = data.get("providers", data) if isinstance(data, dict) else {}
    return {key for key in table if isinstance(key, str) and not key.startswith("_")}


def deployment_problem(path: str, params: Mapping[str, Any], providers: Collection[str] | None) -> str | None:
    """Why this deployment cannot be called (unknown provider, malformed api_base), or None.

    ``path`` is the ``litellm_params`` key path; ``providers`` None skips the provider check.
    A model without a ``provider/`` prefix is left to litellm's own model-name lookup.
    """
    return _provider_problem(path, params, providers) or _api_base_problem(path, params.get("api_base"))


def _provider_problem(path: str, params: Mapping[str, Any], providers: Collection[str] | None) -> str | None:
    if providers is None:
        return None
    explicit = params.get("custom_llm_provider")
    if isinstance(explicit, str) and explicit:
        key, provider = "custom_llm_provider", explicit
    else:
        model = str(params["model"])
        if "/" not in model:
            return None
        key, provider = "model", model.split("/", 1)[0]
    if provider in providers:
        return None
    close = difflib.get_close_matches(provider, list(providers), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{path}.{key}: unknown provider {provider!r}{hint}; litellm knows e.g. openai, anthropic, azure"


def _api_base_problem(path: str, value: object) -> str | None:
    if value is None:
        return None
    example = "e.g. http://localhost:8000/v1"
    if not isinstance(value, str) or not value.strip():
        return f"{path}.api_base: must be an http(s) URL ({example}), got {value!r}"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return f"{path}.api_base: {value!r} is not a valid URL ({example})"
    if parts.scheme not in ("http", "https") or not parts.hostname or value != value.strip():
        return f"{path}.api_base: {value!r} is not an http(s) URL with a host ({example})"
    return None
