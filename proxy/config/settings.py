"""config.yaml -> frozen, validated settings.

The ``model_list`` keeps LiteLLM proxy's shape so an existing LiteLLM config drops in.
A model whose ``litellm_params`` name an unset ``os.environ/`` variable, an unknown provider
or a malformed ``api_base`` is unavailable: left out of routing and listed in
``Config.unavailable`` with the reason (the proxy starts with the others; ``check --strict``
fails on it). When no chat model is available, ConfigError. LiteLLM's own sections are read
in proxy.config.litellm_keys: keys that map onto ours are honoured, the others are listed in
``Config.notices``. ``router``, ``groups``, ``agents``, ``keys``, ``redis``, ``server`` and
``simulator`` are ours (``model_list`` and ``groups`` are read in proxy.config.models,
``agents`` and ``router`` in proxy.config.routing, ``keys`` in proxy.config.keys). A relative
``server.state_file`` is relative to the config file's folder.
Every problem raises ConfigError whose message starts with the key path.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from proxy.config.keys import ClientKey, parse_keys
from proxy.config.litellm_keys import Notice, read_litellm_keys
from proxy.config.models import Arm, parse_arms, parse_groups
from proxy.config.providers import provider_names
from proxy.config.reader import ConfigError, Section
from proxy.config.routing import (
    AgentSettings,
    RouterSettings,
    UnknownAgents,
    parse_agents,
    parse_router,
    parse_unknown_agents,
)
from proxy.simulator.profile import SimProfile, profile_from_dict
from proxy.wire.names import AUTO

__all__ = [
    "AgentSettings",
    "Arm",
    "Config",
    "ConfigError",
    "Notice",
    "RedisSettings",
    "RouterSettings",
    "ServerSettings",
    "UnknownAgents",
    "load_config",
    "parse_config",
]

log = logging.getLogger("model_manager.config")

STATE_FILE = "model-manager-state.json"
SIM_FIELDS = tuple(item.name for item in dataclasses.fields(SimProfile))


@dataclass(frozen=True, slots=True)
class ServerSettings:
    master_key: str | None = None
    max_body_bytes: int = 4 * 1024 * 1024
    state_file: str = STATE_FILE
    """Absolute (next to the config file) when the config was read from a file. Names the
    embedded SQLite database (storage.embedded.database.database_path: ``.json`` -> ``.db``)."""
    workflow_retention_s: float = 7 * 86_400.0
    discovery_interval_s: float = 300.0
    """How often wildcard ``model_list`` entries are listed again (0: only at start and reload)."""
    health_interval_s: float = 0.0
    """How often each upstream's ``GET /models`` is probed (0: no probes)."""


@dataclass(frozen=True, slots=True)
class RedisSettings:
    url: str | None = None
    cluster: bool = False
    prefix: str = "mm"
    timeout_s: float = 0.5
    read_cache_s: float = 0.05
    usage_sync_s: float = 1.0
    agent_ttl_s: float = 30 * 86_400.0
    """Per-agent keys (stats, posteriors, agents-index membership) expire this long after
    the agent's last request; 0 keeps them forever."""
    buffer_keys: int = 100_000
    """Distinct posterior cells / tracking sums buffered through an outage (each writer)."""
    buffer_bytes: int = 64 * 1024 * 1024
    """Bytes of per-request records (decision records, request ids) buffered through an outage."""


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the proxy needs, validated."""

    arms: Mapping[str, Arm]
    groups: Mapping[str, tuple[str, ...]]
    agents: Mapping[str, AgentSettings]
    unknown_agents: UnknownAgents = field(default_factory=UnknownAgents)
    router: RouterSettings = field(default_factory=RouterSettings)
    server: ServerSettings = ServerSettings()
    redis: RedisSettings = RedisSettings()
    simulator: Mapping[str, Mapping[str, Any]] | None = None
    source: str = "<memory>"
    unavailable: Mapping[str, str] = field(default_factory=dict)
    """Models (and groups with no available model) left out, with the reason."""
    arms_by_mode: Mapping[str, Mapping[str, Arm]] = field(default_factory=dict)
    """Every available model by ``model_info.mode`` (``chat`` is ``arms``; e.g. ``embedding``)."""
    notices: tuple[Notice, ...] = ()
    """LiteLLM keys not honoured, and those mapped onto ours (check prints them, start logs them)."""
    keys: tuple[ClientKey, ...] = ()
    """Client keys besides the master key (proxy.config.keys)."""

    def agent(self, name: str) -> AgentSettings:
        return self.agents.get(name) or AgentSettings()

    def redis_url(self) -> str | None:
        """REDIS_URL from the environment wins over the file."""
        return os.environ.get("REDIS_URL") or self.redis.url


def load_config(path: str | Path, prepare: Callable[[object], object] | None = None) -> Config:
    """Read and validate a config file; ``prepare`` (e.g. wildcard expansion) rewrites the
    parsed YAML before validation."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if prepare is not None:
        data = prepare(data)
    folder = Path(path).resolve().parent
    return parse_config(data, source=str(path), folder=folder)


def parse_config(data: object, *, source: str = "<memory>", folder: Path | None = None) -> Config:
    """Validate an already-parsed YAML document; a relative ``server.state_file`` (and its
    default) is resolved against ``folder`` when given (the config file's folder)."""
    top = Section("", data)
    models = parse_arms(top, provider_names())
    arms = models.arms
    groups, unavailable = parse_groups(top, arms, models.lost)
    litellm = read_litellm_keys(top)
    router_section = top.section("router")
    agents = top.section("agents")
    config = Config(
        arms=arms,
        groups=groups,
        unknown_agents=parse_unknown_agents(agents),
        agents=parse_agents(agents, arms, groups, unavailable),
        router=parse_router(router_section, arms, unavailable, litellm.defaults(router_section)),
        server=_server(top.section("server"), top.section("general_settings"), folder),
        redis=_redis(top.section("redis")),
        simulator=_simulator(top.section("simulator")),
        source=source,
        unavailable=unavailable,
        arms_by_mode=models.by_mode,
        notices=models.notices + litellm.notices(router_section),
        keys=parse_keys(top.section("keys"), _requestable(arms, groups, models.by_mode, unavailable)),
    )
    top.finish()
    return config


def _requestable(
    arms: Mapping[str, Arm],
    groups: Mapping[str, tuple[str, ...]],
    by_mode: Mapping[str, Mapping[str, Arm]],
    unavailable: Mapping[str, str],
) -> set[str]:
    """Names a request may give as ``model`` (what a key's ``models`` may list)."""
    return {*arms, *groups, *unavailable, AUTO, *(name for mode in by_mode.values() for name in mode),
            *(arm.group for mode in by_mode.values() for arm in mode.values() if arm.group)}


def _server(section: Section, general: Section, folder: Path | None) -> ServerSettings:
    defaults = ServerSettings()
    master_key = section.string("master_key") or general.string("master_key")
    state_file = section.string("state_file", defaults.state_file) or defaults.state_file
    settings = ServerSettings(
        master_key=master_key or None,
        max_body_bytes=section.integer("max_body_bytes", defaults.max_body_bytes, low=1024),
        state_file=str(folder / state_file) if folder is not None else state_file,
        workflow_retention_s=section.positive("workflow_retention_s", defaults.workflow_retention_s),
        discovery_interval_s=section.number("discovery_interval_s", defaults.discovery_interval_s, low=0.0),
        health_interval_s=section.number("health_interval_s", defaults.health_interval_s, low=0.0),
    )
    section.finish()
    return settings


def _redis(section: Section) -> RedisSettings:
    defaults = RedisSettings()
    settings = RedisSettings(
        url=section.string("url"),
        cluster=section.boolean("cluster", defaults.cluster),
        prefix=section.string("prefix", defaults.prefix) or defaults.prefix,
        timeout_s=section.positive("timeout_s", defaults.timeout_s),
        read_cache_s=section.number("read_cache_s", defaults.read_cache_s, high=10.0),
        usage_sync_s=section.number("usage_sync_s", defaults.usage_sync_s, low=0.01, high=60.0),
        agent_ttl_s=section.number("agent_ttl_s", defaults.agent_ttl_s),
        buffer_keys=section.integer("buffer_keys", defaults.buffer_keys, low=1, high=100_000_000),
        buffer_bytes=section.integer("buffer_bytes", defaults.buffer_bytes, low=1024, high=2**40),
    )
    section.finish()
    return settings


def _simulator(section: Section) -> Mapping[str, Mapping[str, Any]] | None:
    if not section.boolean("enabled", section.has("models")):
        section.raw("models")
        section.finish()
        return None
    models = section.section("models")
    profiles = {name: _profile(models.section(name)) for name, _ in list(models.items())}
    section.finish()
    return MappingProxyType(profiles)


def _profile(section: Section) -> Mapping[str, Any]:
    """One simulated model's profile; unknown fields are named with the allowed ones."""
    section.only(SIM_FIELDS)
    fields = dict(section.items())
    for key, value in fields.items():
        try:
            profile_from_dict({key: value})
        except ValueError as exc:
            raise ConfigError(f"{section.key_path(key)}: {exc}") from exc
    return fields
