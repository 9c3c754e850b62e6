"""config.yaml -> frozen, validated settings.

The ``model_list`` keeps LiteLLM proxy's shape so an existing LiteLLM config drops in;
``router``, ``groups``, ``agents``, ``redis``, ``server`` and ``simulator`` are ours.
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

from proxy.config_reader import ConfigError, Section
from proxy.names import AUTO, is_valid_name

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
class AgentSettings:
    """Per-agent overrides; ``None`` means the router default."""

    models: tuple[str, ...] | None = None
    pin: str | None = None
    exploration_rate: float | None = None
    reward: Mapping[str, float] = field(default_factory=dict)
    quality: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RouterSettings:
    """How requests are routed and how outcomes are scored."""

    policy: str = "thompson"
    exploration_rate: float = 0.02
    half_life_s: float | None = 86_400.0
    max_attempts: int = 3
    attempt_timeout_s: float = 60.0
    first_chunk_timeout_s: float = 30.0
    deadline_s: float = 120.0
    model_field: str = "route"
    propensity_samples: int = 64
    direct_forwarding: bool = True
    direct_translation: bool = True
    decision_ttl_s: float = 86_400.0
    priors: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    policy_options: Mapping[str, Any] = field(default_factory=dict)
    reward: Mapping[str, float] = field(default_factory=dict)
    quality: Mapping[str, Any] = field(default_factory=dict)


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
    router: RouterSettings = RouterSettings()
    server: ServerSettings = ServerSettings()
    redis: RedisSettings = RedisSettings()
    simulator: Mapping[str, Mapping[str, Any]] | None = None
    source: str = "<memory>"

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
    arms = _arms(top)
    groups = _groups(top, arms)
    config = Config(
        arms=arms,
        groups=groups,
        agents=_agents(top.section("agents"), arms, groups),
        router=_router(top.section("router"), arms),
        server=_server(top.section("server"), top.section("general_settings")),
        redis=_redis(top.section("redis")),
        simulator=_simulator(top.section("simulator")),
        source=source,
    )
    for name in LITELLM_SECTIONS:
        if top.raw(name) is not None:
            log.info("config: LiteLLM section %r is accepted and ignored", name)
    top.finish()
    return config


def _arms(top: Section) -> Mapping[str, Arm]:
    entries = top.raw("model_list")
    if not isinstance(entries, list) or not entries:
        raise ConfigError("model_list: must be a non-empty list of models")
    sections = [Section(f"model_list[{i}]", entry) for i, entry in enumerate(entries)]
    names = Counter(section.required_string("model_name") for section in sections)
    seen: Counter[str] = Counter()
    arms: dict[str, Arm] = {}
    for section in sections:
        arm = _arm(section, names, seen)
        if arm.name in arms:
            raise ConfigError(f"{section.path}: duplicate model name {arm.name!r}")
        arms[arm.name] = arm
    return MappingProxyType(arms)


def _arm(section: Section, names: Counter[str], seen: Counter[str]) -> Arm:
    group = section.required_string("model_name")
    params = _litellm_params(section.section("litellm_params"))
    info = section.section("model_info")
    info_items = dict(info.items())
    name = info_items.get("id") or group
    if names[group] > 1 and "id" not in info_items:
        seen[group] += 1
        name = f"{group}#{seen[group]}"
    if not isinstance(name, str) or not is_valid_name(name) or name == AUTO:
        raise ConfigError(f"{section.path}.model_name: {name!r} is not a valid model name")
    section.raw("model_info")
    section.finish()
    return Arm(name, group, MappingProxyType(params), MappingProxyType(info_items))


def _litellm_params(section: Section) -> dict[str, Any]:
    params = {key: value for key, value in section.items() if key not in ROUTER_ONLY_PARAMS}
    if not isinstance(params.get("model"), str) or not params["model"]:
        raise ConfigError(f"{section.key_path('model')}: is required (e.g. openai/gpt-4o)")
    return params


def _groups(top: Section, arms: Mapping[str, Arm]) -> Mapping[str, tuple[str, ...]]:
    groups: dict[str, list[str]] = {}
    for arm in arms.values():
        groups.setdefault(arm.group, []).append(arm.name)
    custom = top.section("groups")
    for name, _ in custom.items():
        members = custom.string_list(name) or ()
        groups[name] = list(_expand(custom.key_path(name), members, arms, groups))
    custom.finish()
    return MappingProxyType({name: tuple(members) for name, members in groups.items()})


def _expand(
    path: str, names: tuple[str, ...], arms: Mapping[str, Arm], groups: Mapping[str, list[str]]
) -> list[str]:
    """Arm names for a list that may name arms or groups, in order, without repeats."""
    result: list[str] = []
    for name in names:
        found = [name] if name in arms else groups.get(name)
        if not found:
            raise ConfigError(f"{path}: {name!r} is not a registered model or group")
        result.extend(item for item in found if item not in result)
    return result


def _agents(
    section: Section, arms: Mapping[str, Arm], groups: Mapping[str, tuple[str, ...]]
) -> Mapping[str, AgentSettings]:
    group_lists = {name: list(members) for name, members in groups.items()}
    agents = {}
    for name, _ in section.items():
        if not is_valid_name(name):
            raise ConfigError(f"{section.key_path(name)}: not a valid agent name")
        agents[name] = _agent(section.section(name), arms, group_lists)
    section.finish()
    return MappingProxyType(agents)


def _agent(section: Section, arms: Mapping[str, Arm], groups: Mapping[str, list[str]]) -> AgentSettings:
    listed = section.string_list("models")
    models = tuple(_expand(section.key_path("models"), listed, arms, groups)) if listed else None
    pin = section.string("pin")
    if pin is not None and pin not in arms:
        raise ConfigError(f"{section.key_path('pin')}: {pin!r} is not a registered model")
    settings = AgentSettings(
        models=models,
        pin=pin,
        exploration_rate=_optional_rate(section),
        reward=_numbers(section.section("reward")),
        quality=dict(section.section("quality").items()),
    )
    section.finish()
    return settings


def _optional_rate(section: Section) -> float | None:
    if not section.has("exploration_rate"):
        return None
    return section.number("exploration_rate", 0.0, high=1.0)


def _numbers(section: Section) -> Mapping[str, float]:
    values = {key: section.number(key, 0.0) for key, _ in list(section.items())}
    section.finish()
    return MappingProxyType(values)


def _router(section: Section, arms: Mapping[str, Arm]) -> RouterSettings:
    defaults = RouterSettings()
    half_life = (
        section.optional_number("half_life_s") if section.has("half_life_s") else (defaults.half_life_s)
    )
    settings = RouterSettings(
        policy=section.choice("policy", defaults.policy, ("thompson", "fixed", "uniform")),
        exploration_rate=section.number("exploration_rate", defaults.exploration_rate, high=1.0),
        half_life_s=half_life or None,
        max_attempts=section.integer("max_attempts", defaults.max_attempts, low=1, high=20),
        attempt_timeout_s=_positive(section, "attempt_timeout_s", defaults.attempt_timeout_s),
        first_chunk_timeout_s=_positive(section, "first_chunk_timeout_s", defaults.first_chunk_timeout_s),
        deadline_s=_positive(section, "deadline_s", defaults.deadline_s),
        model_field=section.choice("model_field", defaults.model_field, ("route", "respect")),
        propensity_samples=section.integer("propensity_samples", defaults.propensity_samples, high=100_000),
        decision_ttl_s=_positive(section, "decision_ttl_s", defaults.decision_ttl_s),
        direct_forwarding=section.boolean("direct_forwarding", defaults.direct_forwarding),
        direct_translation=section.boolean("direct_translation", defaults.direct_translation),
        priors=_priors(section.section("priors"), arms),
        policy_options=dict(section.section("policy_options").items()),
        reward=_numbers(section.section("reward")),
        quality=dict(section.section("quality").items()),
    )
    section.finish()
    return settings


def _positive(section: Section, key: str, default: float) -> float:
    return section.number(key, default, low=1e-3)


def _priors(section: Section, arms: Mapping[str, Arm]) -> Mapping[str, tuple[float, float]]:
    priors = {}
    for name, _ in list(section.items()):
        if name not in arms:
            raise ConfigError(f"{section.key_path(name)}: {name!r} is not a registered model")
        cell = section.section(name)
        priors[name] = (cell.number("alpha", 1.0, low=1e-3), cell.number("beta", 1.0, low=1e-3))
        cell.finish()
    section.finish()
    return MappingProxyType(priors)


def _server(section: Section, general: Section) -> ServerSettings:
    defaults = ServerSettings()
    # LiteLLM's general_settings is accepted for drop-in configs; only master_key is used.
    master_key = section.string("master_key") or general.string("master_key")
    settings = ServerSettings(
        master_key=master_key or None,
        max_body_bytes=section.integer("max_body_bytes", defaults.max_body_bytes, low=1024),
        state_file=section.string("state_file", defaults.state_file) or defaults.state_file,
        workflow_retention_s=_positive(section, "workflow_retention_s", defaults.workflow_retention_s),
    )
    section.finish()
    return settings


def _redis(section: Section) -> RedisSettings:
    defaults = RedisSettings()
    settings = RedisSettings(
        url=section.string("url"),
        prefix=section.string("prefix", defaults.prefix) or defaults.prefix,
        timeout_s=_positive(section, "timeout_s", defaults.timeout_s),
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
