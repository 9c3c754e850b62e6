"""The ``model_list`` and ``groups`` sections: the models the router may choose.

Entries keep LiteLLM proxy's shape. An entry's name is ``model_info.id``, else its
``model_name``; entries sharing a ``model_name`` without ids become ``name#1``, ``name#2``...
and a group ``name``. ``model_info.mode`` (LiteLLM's, default ``chat``) says which endpoint a
deployment serves: only chat deployments are routed for chat completions; the others are kept,
by mode, for their own endpoints. LiteLLM's ``rpm`` / ``tpm`` are kept on the Arm
(proxy.pipeline.usage_limits); its other router-only and retry params (``weight``, ``order``,
``timeout``, ``num_retries``, ...) are dropped, each with a Notice. A model whose
``litellm_params`` name an unset ``os.environ/`` variable, an unknown provider or a malformed
``api_base`` is unavailable: left out, with the reason (ConfigError when no chat model is left).
``model_info.supported_endpoints`` listing ``/v1/responses`` marks a deployment that speaks the
Responses API natively (proxy.config.endpoints).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from proxy.config.endpoints import native_responses
from proxy.config.litellm_keys import Notice
from proxy.config.providers import deployment_problem
from proxy.config.reader import ConfigError, MissingEnvironment, Section
from proxy.config.routing import expand
from proxy.wire.names import AUTO, is_valid_name

log = logging.getLogger("model_manager.config")

ENTRY_KEYS = ("model_name", "litellm_params", "model_info")
CHAT = "chat"
MODES = (
    "chat", "completion", "responses", "embedding", "image_generation", "image_edit",
    "audio_transcription", "audio_speech", "moderation", "rerank", "search", "ocr", "realtime",
    "video_generation",
)
"""LiteLLM's ``model_info.mode`` values; only ``chat`` deployments serve chat completions."""
LIMIT_PARAMS = ("rpm", "tpm")
DROPPED_PARAMS = {
    "weight": "the router learns how to split traffic",
    "order": "the router learns which model to try first (router.policy: fixed keeps config order)",
    "max_parallel_requests": "use rpm / tpm",
    "timeout": "router.attempt_timeout_s applies to every model",
    "stream_timeout": "router.first_chunk_timeout_s applies to every model",
    "num_retries": "router.max_attempts (other models, not the same one) applies to every request",
    "max_retries": "router.max_attempts (other models, not the same one) applies to every request",
}
"""LiteLLM router-only and retry params that are not passed on, with what applies instead."""


@dataclass(frozen=True, slots=True)
class Arm:
    """One registered deployment: a model the router may choose."""

    name: str
    group: str
    params: Mapping[str, Any]
    info: Mapping[str, Any]
    rpm: int | None = None
    """Requests per minute this deployment may take (LiteLLM's ``rpm``), per process."""
    tpm: int | None = None
    """Tokens per minute (LiteLLM's ``tpm``), per process."""
    mode: str = CHAT
    """LiteLLM's ``model_info.mode``: which endpoint this deployment serves."""
    native_responses: bool = False
    """``model_info.supported_endpoints`` lists ``/v1/responses``: Responses requests are relayed
    to it as they came, not translated (proxy.config.endpoints)."""

    @property
    def litellm_model(self) -> str:
        return str(self.params["model"])

    @property
    def max_input_tokens(self) -> int | None:
        value = self.info.get("max_input_tokens")
        return value if isinstance(value, int) else None


@dataclass(frozen=True, slots=True)
class ModelList:
    """The ``model_list``: chat arms, every arm by mode, the unavailable ones, and notices."""

    arms: Mapping[str, Arm]
    by_mode: Mapping[str, Mapping[str, Arm]]
    lost: Mapping[str, _Unavailable]
    notices: tuple[Notice, ...]


def parse_arms(top: Section, providers: Collection[str] | None = None) -> ModelList:
    """The available models by name (chat ones in ``arms``), and the unavailable ones;
    ``providers`` are litellm's provider names (None: prefixes are not checked)."""
    entries = top.raw("model_list")
    if not isinstance(entries, list) or not entries:
        raise ConfigError("model_list: must be a non-empty list of models")
    sections = [Section(f"model_list[{i}]", entry) for i, entry in enumerate(entries)]
    for section in sections:
        section.only(ENTRY_KEYS)
    names = Counter(section.required_string("model_name") for section in sections)
    seen: Counter[str] = Counter()
    by_mode: dict[str, dict[str, Arm]] = {}
    unavailable: dict[str, _Unavailable] = {}
    notices: list[Notice] = []
    for section in sections:
        arm = _arm(section, names, seen, providers, notices)
        if any(arm.name in found for found in by_mode.values()) or arm.name in unavailable:
            raise ConfigError(f"{section.path}: duplicate model name {arm.name!r}")
        if isinstance(arm, Arm):
            by_mode.setdefault(arm.mode, {})[arm.name] = arm
        else:
            unavailable[arm.name] = arm
            log.warning("model %r is unavailable (left out of routing): %s", arm.name, arm.reason)
    arms = by_mode.get(CHAT, {})
    if not arms:
        reasons = "; ".join(lost.reason for lost in unavailable.values()) or "none has mode chat"
        raise ConfigError(f"model_list: no model is available ({reasons})")
    frozen = {mode: MappingProxyType(found) for mode, found in by_mode.items()}
    lost = MappingProxyType(unavailable)
    return ModelList(MappingProxyType(arms), MappingProxyType(frozen), lost, tuple(notices))


@dataclass(frozen=True, slots=True)
class _Unavailable:
    name: str
    group: str
    reason: str


def _arm(
    section: Section,
    names: Counter[str],
    seen: Counter[str],
    providers: Collection[str] | None,
    notices: list[Notice],
) -> Arm | _Unavailable:
    group = section.required_string("model_name")
    info = section.section("model_info")
    info_items = dict(info.items())
    name = info_items.get("id") or group
    if "*" in group:
        raise ConfigError(f"{section.path}.model_name: wildcard deployments ({group!r}) are expanded "
                          "from their api_base's GET /v1/models when a config file is loaded "
                          "(proxy.config.discovery), not in a parsed config")
    if not isinstance(name, str) or not is_valid_name(name) or name == AUTO:
        raise ConfigError(f"{section.path}.model_name: {name!r} is not a valid model name")
    if names[group] > 1 and "id" not in info_items:
        seen[group] += 1
        name = f"{group}#{seen[group]}"  # deployments sharing a name: "gpt#1", "gpt#2", ...
    mode = info.choice("mode", CHAT, MODES)
    litellm = section.section("litellm_params")
    try:
        params = _litellm_params(litellm, notices)
    except MissingEnvironment as missing:
        section.finish()
        return _Unavailable(name, group, str(missing))
    section.finish()
    problem = deployment_problem(litellm.path, params, providers)
    if problem is not None:
        return _Unavailable(name, group, problem)
    rpm, tpm = _limit(litellm, "rpm"), _limit(litellm, "tpm")
    native = native_responses(info, params)
    return Arm(name, group, MappingProxyType(params), MappingProxyType(info_items), rpm, tpm, mode, native)


def _litellm_params(section: Section, notices: list[Notice]) -> dict[str, Any]:
    params = {}
    for key, value in section.items():
        if key in DROPPED_PARAMS:
            notices.append(Notice(section.key_path(key), f"not honoured: {DROPPED_PARAMS[key]}"))
        elif key not in LIMIT_PARAMS:
            params[key] = value
    if not isinstance(params.get("model"), str) or not params["model"]:
        raise ConfigError(f"{section.key_path('model')}: is required (e.g. openai/gpt-4o)")
    return params


def _limit(section: Section, key: str) -> int | None:
    """A positive integer ``rpm``/``tpm``, or None when absent."""
    return section.integer(key, 0, low=1) if section.has(key) else None


def parse_groups(
    top: Section, arms: Mapping[str, Arm], lost: Mapping[str, _Unavailable]
) -> tuple[Mapping[str, tuple[str, ...]], Mapping[str, str]]:
    """Groups of available models (one per shared model_name, and the custom ones, an
    unavailable member left out), and every unavailable name with the reason: models, and
    groups left with no available model."""
    groups: dict[str, list[str]] = {}
    for arm in arms.values():
        groups.setdefault(arm.group, []).append(arm.name)
    unavailable = {name: item.reason for name, item in lost.items()}
    for item in lost.values():
        if item.group not in groups and item.group not in arms:
            unavailable.setdefault(item.group, item.reason)
    custom = top.section("groups")
    for name, _ in custom.items():
        members = custom.string_list(name) or ()
        found = expand(custom.key_path(name), members, arms, groups, unavailable)
        if found:
            groups[name] = found
        else:
            unavailable[name] = f"groups.{name}: no member is available"
    custom.finish()
    frozen = {name: tuple(members) for name, members in groups.items()}
    return MappingProxyType(frozen), MappingProxyType(unavailable)
