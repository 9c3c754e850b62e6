"""config.yaml -> frozen, validated settings.

The ``model_list`` keeps LiteLLM proxy's shape so an existing LiteLLM config drops in.
A model whose ``litellm_params`` name an unset ``os.environ/`` variable is unavailable:
left out of routing and listed in ``Config.unavailable`` with the reason (the proxy starts
with the others; ``check --strict`` fails on it). When no model is available, ConfigError.
``router``, ``groups``, ``agents``, ``redis``, ``server`` and ``simulator`` are ours
(``agents`` and ``router`` are read in proxy.config_routing).
Every problem raises ConfigError whose message starts with the key path.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from proxy.config_reader import ConfigError, MissingEnvironment, Section
from proxy.config_routing import AgentSettings, RouterSettings, expand, parse_agents, parse_router
from proxy.names import AUTO, is_valid_name

__all__ = [
    "AgentSettings",
    "Arm",
    "Config",
    "ConfigError",
    "RedisSettings",
    "RouterSettings",
    "ServerSettings",
    "load_config",
    "parse_config",
]

log = logging.getLogger("model_manager.config")

LITELLM_SECTIONS = ("litellm_settings", "router_settings", "environment_variables")
ROUTER_ONLY_PARAMS = frozenset({"rpm", "tpm", "weight", "order", "max_parallel_requests"})


@dataclass(frozen=True, slots=True)
class Arm:
    """One registered deployment: a model the router may choose."""

    name: str
    group: str
    params: Mapping[str, Any]
    info: Mapping[str, Any]

    @property
    def litellm_model(self) -> str:
        return str(self.params["model"])

    @property
    def max_input_tokens(self) -> int | None:
        value = self.info.get("max_input_tokens")
        return value if isinstance(value, int) else None


@dataclass(frozen=True, slots=True)
class ServerSettings:
    master_key: str | None = None
    max_body_bytes: int = 4 * 1024 * 1024
    state_file: str = "model-manager-state.json"
    workflow_retention_s: float = 7 * 86_400.0


@dataclass(frozen=True, slots=True)
class RedisSettings:
    url: str | None = None
    prefix: str = "mm"
    timeout_s: float = 0.5
    read_cache_s: float = 0.05


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the proxy needs, validated."""

    arms: Mapping[str, Arm]
    groups: Mapping[str, tuple[str, ...]]
    agents: Mapping[str, AgentSettings]
    router: RouterSettings = field(default_factory=RouterSettings)
    server: ServerSettings = ServerSettings()
    redis: RedisSettings = RedisSettings()
    simulator: Mapping[str, Mapping[str, Any]] | None = None
    source: str = "<memory>"
    unavailable: Mapping[str, str] = field(default_factory=dict)
    """Models (and groups with no available model) left out, with the reason."""

    def agent(self, name: str) -> AgentSettings:
        return self.agents.get(name) or AgentSettings()

    def redis_url(self) -> str | None:
        """REDIS_URL from the environment wins over the file."""
        return os.environ.get("REDIS_URL") or self.redis.url


def load_config(path: str | Path) -> Config:
    """Read and validate a config file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    return parse_config(data, source=str(path))


def parse_config(data: object, *, source: str = "<memory>") -> Config:
    """Validate an already-parsed YAML document."""
    top = Section("", data)
    arms, lost = _arms(top)
    groups, unavailable = _groups(top, arms, lost)
    config = Config(
        arms=arms,
        groups=groups,
        agents=parse_agents(top.section("agents"), arms, groups, unavailable),
        router=parse_router(top.section("router"), arms, unavailable),
        server=_server(top.section("server"), top.section("general_settings")),
        redis=_redis(top.section("redis")),
        simulator=_simulator(top.section("simulator")),
        source=source,
        unavailable=unavailable,
    )
    for name in LITELLM_SECTIONS:
        if top.raw(name) is not None:
            log.info("config: LiteLLM section %r is accepted and ignored", name)
    top.finish()
    return config


def _arms(top: Section) -> tuple[Mapping[str, Arm], Mapping[str, _Unavailable]]:
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
    try:
        params = _litellm_params(section.section("litellm_params"))
    except MissingEnvironment as missing:
        section.finish()
        return _Unavailable(name, group, str(missing))
    section.finish()
    return Arm(name, group, MappingProxyType(params), MappingProxyType(info_items))


def _litellm_params(section: Section) -> dict[str, Any]:
    params = {key: value for key, value in section.items() if key not in ROUTER_ONLY_PARAMS}
    if not isinstance(params.get("model"), str) or not params["model"]:
        raise ConfigError(f"{section.key_path('model')}: is required (e.g. openai/gpt-4o)")
    return params


def _groups(
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


def _server(section: Section, general: Section) -> ServerSettings:
    defaults = ServerSettings()
    # LiteLLM's general_settings is accepted for drop-in configs; only master_key is used.
    master_key = section.string("master_key") or general.string("master_key")
    settings = ServerSettings(
        master_key=master_key or None,
        max_body_bytes=section.integer("max_body_bytes", defaults.max_body_bytes, low=1024),
        state_file=section.string("state_file", defaults.state_file) or defaults.state_file,
        workflow_retention_s=section.positive("workflow_retention_s", defaults.workflow_retention_s),
    )
    section.finish()
    return settings


def _redis(section: Section) -> RedisSettings:
    defaults = RedisSettings()
    settings = RedisSettings(
        url=section.string("url"),
        prefix=section.string("prefix", defaults.prefix) or defaults.prefix,
        timeout_s=section.positive("timeout_s", defaults.timeout_s),
        read_cache_s=section.number("read_cache_s", defaults.read_cache_s, high=10.0),
    )
    section.finish()
    return settings


def _simulator(section: Section) -> Mapping[str, Mapping[str, Any]] | None:
    if not section.boolean("enabled", section.has("models")):
        section.raw("models")
        section.finish()
        return None
    models = section.section("models")
    profiles = {name: dict(models.section(name).items()) for name, _ in list(models.items())}
    section.finish()
    return MappingProxyType(profiles)
