"""The ``model_list`` and ``groups`` sections: the models the router may choose.

Entries keep LiteLLM proxy's shape. An entry's name is ``model_info.id``, else its
``model_name``; entries sharing a ``model_name`` without ids become ``name#1``, ``name#2``...
and a group ``name``. LiteLLM's ``rpm`` / ``tpm`` are kept on the Arm (proxy.pipeline.usage_limits);
its other router-only params (``weight``, ``order``, ...) are dropped. A model whose
``litellm_params`` name an unset ``os.environ/`` variable is unavailable: left out, with
the reason (ConfigError when none is left).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from proxy.config.reader import ConfigError, MissingEnvironment, Section
from proxy.config.routing import expand
from proxy.wire.names import AUTO, is_valid_name

log = logging.getLogger("model_manager.config")

ROUTER_ONLY_PARAMS = frozenset({"rpm", "tpm", "weight", "order", "max_parallel_requests"})


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

    @property
    def litellm_model(self) -> str:
        return str(self.params["model"])

    @property
    def max_input_tokens(self) -> int | None:
        value = self.info.get("max_input_tokens")
        return value if isinstance(value, int) else None


def parse_arms(top: Section) -> tuple[Mapping[str, Arm], Mapping[str, _Unavailable]]:
    """The available models by name, and the unavailable ones."""
    entries = top.raw("model_list")
    if not isinstance(entries, list) or not entries:
        raise ConfigError("model_list: must be a non-empty list of models")
    sections = [Section(f"model_list[{i}]", entry) for i, entry in enumerate(entries)]
    names = Counter(section.required_string("model_name") for section in sections)
    seen: Counter[str] = Counter()
    arms: dict[str, Arm] = {}
    unavailable: dict[str, _Unavailable] = {}
    for section in sections:
        arm = _arm(section, names, seen)
        if arm.name in arms or arm.name in unavailable:
            raise ConfigError(f"{section.path}: duplicate model name {arm.name!r}")
        if isinstance(arm, Arm):
            arms[arm.name] = arm
        else:
            unavailable[arm.name] = arm
            log.warning("model %r is unavailable (left out of routing): %s", arm.name, arm.reason)
    if not arms:
        reasons = "; ".join(lost.reason for lost in unavailable.values())
        raise ConfigError(f"model_list: no model is available ({reasons})")
    return MappingProxyType(arms), MappingProxyType(unavailable)


@dataclass(frozen=True, slots=True)
class _Unavailable:
    name: str
    group: str
    reason: str


def _arm(section: Section, names: Counter[str], seen: Counter[str]) -> Arm | _Unavailable:
    group = section.required_string("model_name")
    info_items = dict(section.section("model_info").items())
    name = info_items.get("id") or group
    if "*" in group:
        raise ConfigError(f"{section.path}.model_name: wildcard deployments ({group!r}) are not "
                          "supported: the router chooses among models registered by name")
    if not isinstance(name, str) or not is_valid_name(name) or name == AUTO:
        raise ConfigError(f"{section.path}.model_name: {name!r} is not a valid model name")
    if names[group] > 1 and "id" not in info_items:
        seen[group] += 1
        name = f"{group}#{seen[group]}"  # deployments sharing a name: "gpt#1", "gpt#2", ...
    litellm = section.section("litellm_params")
    try:
        params = _litellm_params(litellm)
    except MissingEnvironment as missing:
        section.finish()
        return _Unavailable(name, group, str(missing))
    section.finish()
    rpm, tpm = _limit(litellm, "rpm"), _limit(litellm, "tpm")
    return Arm(name, group, MappingProxyType(params), MappingProxyType(info_items), rpm, tpm)


def _litellm_params(section: Section) -> dict[str, Any]:
    params = {key: value for key, value in section.items() if key not in ROUTER_ONLY_PARAMS}
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
