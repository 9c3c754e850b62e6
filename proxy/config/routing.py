"""The ``agents`` and ``router`` sections of config.yaml: who may use which models, and how
requests are routed and scored. Every problem raises ConfigError naming the key path."""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from policies.quality import QualityWeights
from policies.reward import RewardWeights
from policies.thompson import ThompsonPolicy
from proxy.config.reader import ConfigError, Section
from proxy.wire.names import is_valid_name


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """Per-agent overrides; ``None`` means the router default."""

    models: tuple[str, ...] | None = None
    pin: str | None = None
    exploration_rate: float | None = None
    reward: Mapping[str, float] = field(default_factory=dict)
    quality: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UnknownAgents:
    """How requests from agents not listed under ``agents`` (nor ``default``) are admitted.

    ``allow``: whether they are served at all (else 403 ``unknown_agent``). Each process
    admits up to ``max_distinct`` distinct unknown names; beyond that a new name is served as
    ``overflow_agent`` (``overflow: share``: they learn and are counted together) or refused
    with 429 ``too_many_agents`` (``overflow: refuse``).
    """

    allow: bool = True
    max_distinct: int = 10_000
    overflow: str = "share"
    overflow_agent: str = "overflow"


UNKNOWN_AGENT_KEYS = ("allow_unknown", "max_unknown", "unknown_overflow", "overflow_agent")
"""Keys of the ``agents`` section that configure UnknownAgents (so no agent has these names)."""


@dataclass(frozen=True, slots=True)
class RouterSettings:
    """How requests are routed and how outcomes are scored."""

    policy: str = "thompson"
    exploration_rate: float = 0.0
    half_life_s: float | None = 86_400.0
    max_attempts: int = 3
    attempt_timeout_s: float = 60.0
    first_chunk_timeout_s: float = 30.0
    deadline_s: float = 120.0
    model_field: str = "route"
    propensity_samples: int = 64
    direct_forwarding: bool = True
    direct_translation: bool = True
    resume_streams: bool = True
    """A stream broken after its first chunk is continued by the next-ranked model."""
    decision_ttl_s: float = 86_400.0
    priors: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    policy_options: Mapping[str, Any] = field(default_factory=dict)
    reward: Mapping[str, float] = field(default_factory=dict)
    quality: Mapping[str, Any] = field(default_factory=dict)


def expand(
    path: str,
    names: tuple[str, ...],
    arms: Collection[str],
    groups: Mapping[str, list[str]],
    unavailable: Collection[str] = (),
) -> list[str]:
    """Arm names for a list that may name arms or groups, in order, without repeats;
    names in ``unavailable`` (configured, but missing credentials) are left out."""
    result: list[str] = []
    for name in names:
        if name in unavailable:
            continue
        found = [name] if name in arms else groups.get(name)
        if not found:
            raise ConfigError(f"{path}: {name!r} is not a registered model or group")
        result.extend(item for item in found if item not in result)
    return result


def parse_agents(
    section: Section,
    arms: Collection[str],
    groups: Mapping[str, tuple[str, ...]],
    unavailable: Collection[str] = (),
) -> Mapping[str, AgentSettings]:
    """The ``agents`` section; ``arms`` are the available model names, ``unavailable``
    the configured ones left out (an agent's list skips them; an empty result means the
    agent has no model now, a pin to one stays and fails at request time)."""
    group_lists = {name: list(members) for name, members in groups.items()}
    agents = {}
    for name, _ in section.items():
        if name in UNKNOWN_AGENT_KEYS:
            continue
        if not is_valid_name(name):
            raise ConfigError(f"{section.key_path(name)}: not a valid agent name")
        agents[name] = _agent(section.section(name), arms, group_lists, unavailable)
    section.finish()
    return MappingProxyType(agents)


def parse_unknown_agents(section: Section) -> UnknownAgents:
    """The ``agents`` section's allow_unknown, max_unknown, unknown_overflow, overflow_agent."""
    defaults = UnknownAgents()
    overflow_agent = section.string("overflow_agent", defaults.overflow_agent) or defaults.overflow_agent
    if not is_valid_name(overflow_agent):
        raise ConfigError(f"{section.key_path('overflow_agent')}: not a valid agent name")
    return UnknownAgents(
        allow=section.boolean("allow_unknown", defaults.allow),
        max_distinct=section.integer("max_unknown", defaults.max_distinct, high=10_000_000),
        overflow=section.choice("unknown_overflow", defaults.overflow, ("share", "refuse")),
        overflow_agent=overflow_agent,
    )


def _agent(
    section: Section, arms: Collection[str], groups: Mapping[str, list[str]], unavailable: Collection[str]
) -> AgentSettings:
    listed = section.string_list("models")
    models = None
    if listed:
        models = tuple(expand(section.key_path("models"), listed, arms, groups, unavailable))
    pin = section.string("pin")
    if pin is not None and pin not in arms and pin not in unavailable:
        raise ConfigError(f"{section.key_path('pin')}: {pin!r} is not a registered model")
    settings = AgentSettings(
        models=models,
        pin=pin,
        exploration_rate=_optional_rate(section),
        reward=_reward(section.section("reward")),
        quality=_quality(section.section("quality")),
    )
    section.finish()
    return settings


def _optional_rate(section: Section) -> float | None:
    if not section.has("exploration_rate"):
        return None
    return section.number("exploration_rate", 0.0, high=1.0)


REWARD_KEYS = tuple(item.name for item in dataclasses.fields(RewardWeights))
QUALITY_KEYS = tuple(item.name for item in dataclasses.fields(QualityWeights))
THOMPSON_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        name: parameter.default
        for name, parameter in inspect.signature(ThompsonPolicy.__init__).parameters.items()
        if name not in ("self", "name", "priors")
    }
)
"""``router.policy_options`` of the thompson policy and their defaults, whose types the
values must have (``fixed`` and ``uniform`` take none)."""
THOMPSON_OPTIONS = tuple(THOMPSON_DEFAULTS)


def _reward(section: Section) -> Mapping[str, float]:
    section.only(REWARD_KEYS)
    values = {key: section.number(key, 0.0) for key in section.key_names()}
    return MappingProxyType(values)


def _quality(section: Section) -> Mapping[str, Any]:
    section.only(QUALITY_KEYS)
    values: dict[str, Any] = {
        key: section.boolean(key, True) if key == "enabled" else section.number(key, 0.0, high=1.0)
        for key in section.key_names()
    }
    return MappingProxyType(values)


def _policy_options(section: Section, policy: str) -> Mapping[str, Any]:
    section.only(THOMPSON_OPTIONS if policy == "thompson" else ())
    values = {key: _typed_option(section, key) for key in section.key_names()}
    return MappingProxyType(values)


def _typed_option(section: Section, key: str) -> Any:
    """The option ``key`` read as the type of its default (a bool, an int or a number);
    its range is the policy's to check."""
    default = THOMPSON_DEFAULTS[key]
    if isinstance(default, bool):
        return section.boolean(key, default)
    if isinstance(default, int):
        return section.integer(key, default, low=-(2**31))
    return section.number(key, default, low=-math.inf)


def parse_router(
    section: Section,
    arms: Collection[str],
    unavailable: Collection[str] = (),
    litellm: Mapping[str, float] | None = None,
) -> RouterSettings:
    """The ``router`` section; ``arms`` are the available model names (priors of the
    ``unavailable`` ones are ignored); ``litellm`` gives defaults for ``max_attempts`` and
    ``attempt_timeout_s`` from LiteLLM keys."""
    mapped = litellm or {}
    defaults = RouterSettings()
    defaults = dataclasses.replace(
        defaults,
        max_attempts=int(mapped.get("max_attempts", defaults.max_attempts)),
        attempt_timeout_s=mapped.get("attempt_timeout_s", defaults.attempt_timeout_s),
    )
    policy = section.choice("policy", defaults.policy, ("thompson", "fixed", "uniform"))
    half_life = (
        section.optional_number("half_life_s") if section.has("half_life_s") else (defaults.half_life_s)
    )
    settings = RouterSettings(
        policy=policy,
        exploration_rate=section.number("exploration_rate", defaults.exploration_rate, high=1.0),
        half_life_s=half_life or None,
        max_attempts=section.integer("max_attempts", defaults.max_attempts, low=1, high=20),
        attempt_timeout_s=section.positive("attempt_timeout_s", defaults.attempt_timeout_s),
        first_chunk_timeout_s=section.positive("first_chunk_timeout_s", defaults.first_chunk_timeout_s),
        deadline_s=section.positive("deadline_s", defaults.deadline_s),
        model_field=section.choice("model_field", defaults.model_field, ("route", "respect")),
        propensity_samples=section.integer("propensity_samples", defaults.propensity_samples, high=100_000),
        decision_ttl_s=section.positive("decision_ttl_s", defaults.decision_ttl_s),
        direct_forwarding=section.boolean("direct_forwarding", defaults.direct_forwarding),
        direct_translation=section.boolean("direct_translation", defaults.direct_translation),
        resume_streams=section.boolean("resume_streams", defaults.resume_streams),
        priors=_priors(section.section("priors"), arms, unavailable),
        policy_options=_policy_options(section.section("policy_options"), policy),
        reward=_reward(section.section("reward")),
        quality=_quality(section.section("quality")),
    )
    section.finish()
    return settings


def _priors(
    section: Section, arms: Collection[str], unavailable: Collection[str]
) -> Mapping[str, tuple[float, float]]:
    priors = {}
    for name, _ in list(section.items()):
        if name in unavailable:
            continue
        if name not in arms:
            raise ConfigError(f"{section.key_path(name)}: {name!r} is not a registered model")
        cell = section.section(name)
        priors[name] = (cell.number("alpha", 1.0, low=1e-3), cell.number("beta", 1.0, low=1e-3))
        cell.finish()
    section.finish()
    return MappingProxyType(priors)
