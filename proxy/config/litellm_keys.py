"""LiteLLM proxy's own sections (``litellm_settings``, ``router_settings``,
``general_settings``, ``environment_variables``): what maps onto ours, and what is not honoured.

Honoured: ``num_retries`` (either section) -> ``router.max_attempts = num_retries + 1``;
``router_settings.timeout`` / ``litellm_settings.request_timeout`` -> ``router.attempt_timeout_s``;
``general_settings.master_key`` -> ``server.master_key`` (read in proxy.config.settings). A key of
ours set explicitly wins. Every other key is accepted and reported as a Notice, once, by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from proxy.config.reader import Section

MAX_ATTEMPTS = 20
MAPPED = {
    "num_retries": "max_attempts",
    "timeout": "attempt_timeout_s",
    "request_timeout": "attempt_timeout_s",
}
"""LiteLLM keys honoured, and the router setting each sets."""

_FALLBACKS = (
    "a request for `auto` (or any name that is not a group) already falls back across every model "
    "the agent may use, best learned first; a request naming a group stays in that group, so list "
    "the fallback models in one `groups:` entry to let them serve it"
)
_CALLBACKS = "no callbacks: use GET /metrics, GET /v1/stats and the decision records"
_REDIS = "use redis.url (or REDIS_URL)"
_DATABASE = "not honoured: state lives in Redis (redis.url) or the embedded database (server.state_file)"
_COOLDOWN = "a model answering 429 rests for its Retry-After; failures lower its learned score"

ADVICE = {
    "fallbacks": _FALLBACKS,
    "default_fallbacks": _FALLBACKS,
    "content_policy_fallbacks": _FALLBACKS,
    "context_window_fallbacks": "models whose model_info.max_input_tokens is too small are skipped, "
    "and a context-window error falls back to the next model",
    "routing_strategy": "the router learns per agent: router.policy (thompson, fixed, uniform)",
    "routing_strategy_args": "see router.policy_options",
    "model_group_alias": "use groups: (extra names a client may send as model)",
    "cache": "no response cache",
    "cache_params": "no response cache",
    "database_url": _DATABASE,
    "store_model_in_db": _DATABASE,
    "success_callback": _CALLBACKS,
    "failure_callback": _CALLBACKS,
    "callbacks": _CALLBACKS,
    "service_callback": _CALLBACKS,
    "redis_host": _REDIS,
    "redis_port": _REDIS,
    "redis_password": _REDIS,
    "redis_url": _REDIS,
    "allowed_fails": _COOLDOWN,
    "cooldown_time": _COOLDOWN,
    "retry_after": _COOLDOWN,
    "set_verbose": "use LOG_LEVEL or serve --log-level",
    "json_logs": "use LOG_LEVEL or serve --log-level",
    "drop_params": "set drop_params: true in each model's litellm_params",
    "enable_pre_call_checks": "prompts longer than model_info.max_input_tokens skip that model",
    "max_budget": "no budgets: see the cost per agent in GET /v1/stats",
}
ENVIRONMENT_ADVICE = "not set by Model Manager: export it in the environment of the proxy process"


@dataclass(frozen=True, slots=True)
class Notice:
    """A LiteLLM key that is not honoured, or one mapped onto ours: key path and what happens."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True, slots=True)
class Mapped:
    """A honoured LiteLLM key: where it was, which router setting it sets, and the value."""

    path: str
    setting: str
    value: float


@dataclass(frozen=True, slots=True)
class LiteLLMKeys:
    """The LiteLLM keys that map onto router settings, and those not honoured."""

    mapped: tuple[Mapped, ...] = ()
    ignored: tuple[Notice, ...] = ()

    def defaults(self, router: Section) -> dict[str, float]:
        """Router settings taken from LiteLLM keys, for those ``router`` does not set itself."""
        return {item.setting: item.value for item in self.mapped if not router.has(item.setting)}

    def notices(self, router: Section) -> tuple[Notice, ...]:
        """The ignored keys, then what each mapped key became (or that ours wins)."""
        mapped = tuple(
            Notice(item.path, f"not used: router.{item.setting} is set and wins")
            if router.has(item.setting)
            else Notice(item.path, f"honoured as router.{item.setting} = {item.value:g}")
            for item in self.mapped
        )
        return self.ignored + mapped


def read_litellm_keys(top: Section) -> LiteLLMKeys:
    """Read LiteLLM's sections (``general_settings.master_key`` is left to the caller)."""
    litellm, router = top.section("litellm_settings"), top.section("router_settings")
    general, environment = top.section("general_settings"), top.section("environment_variables")
    mapped = [
        *_mapped(litellm, router, "num_retries", "max_attempts"),
        *_mapped(router, litellm, "timeout", "attempt_timeout_s"),
    ]
    if not any(item.setting == "attempt_timeout_s" for item in mapped):
        mapped.extend(_mapped(litellm, router, "request_timeout", "attempt_timeout_s"))
    used = {item.path: item for item in mapped}
    ignored = [
        *_not_honoured(litellm, used),
        *_not_honoured(router, used),
        *_not_honoured(general, used, skip=("master_key",)),
        *(Notice(environment.key_path(key), ENVIRONMENT_ADVICE) for key in environment.key_names()),
    ]
    return LiteLLMKeys(tuple(mapped), tuple(ignored))


def _mapped(first: Section, second: Section, key: str, setting: str) -> list[Mapped]:
    for section in (first, second):
        if section.has(key):
            if setting == "max_attempts":
                value: float = min(section.integer(key, 0), MAX_ATTEMPTS - 1) + 1
            else:
                value = section.positive(key, 1.0)
            return [Mapped(section.key_path(key), setting, value)]
    return []


def _not_honoured(section: Section, used: Mapping[str, Mapped], skip: tuple[str, ...] = ()) -> list[Notice]:
    """A Notice per key of ``section`` that is neither ``used`` (mapped) nor in ``skip``."""
    notices = []
    for key in section.key_names():
        path = section.key_path(key)
        if key in skip or path in used:
            continue
        if key in MAPPED:
            winner = next(item.path for item in used.values() if item.setting == MAPPED[key])
            notices.append(Notice(path, f"not used: {winner} sets the same router setting"))
        else:
            notices.append(Notice(path, f"not honoured: {ADVICE[key]}" if key in ADVICE else "not honoured"))
    return notices

