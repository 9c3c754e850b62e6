"""A typical LiteLLM proxy config drops in honestly: non-chat modes stay out of chat routing,
every LiteLLM key we do not honour is named once, the ones that map are honoured, bad
providers and api_bases leave that model unavailable, misspelt keys are named with the
allowed ones, and the embedded state file sits next to the config file."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.paths import DATA

from proxy.config.litellm_keys import ADVICE
from proxy.config.providers import provider_names
from proxy.config.settings import STATE_FILE, Config, ConfigError, load_config, parse_config

FIXTURE = DATA / "litellm_proxy_config.yaml"
UPSTREAM = "http://127.0.0.1:9/v1"
ENV = {
    "MM_DROPIN_OPENAI_KEY": "sk-dropin",
    "MM_DROPIN_MASTER_KEY": "sk-master-dropin",
}
IGNORED = {
    "litellm_settings.drop_params",
    "litellm_settings.success_callback",
    "litellm_settings.cache",
    "litellm_settings.cache_params",
    "litellm_settings.fallbacks",
    "litellm_settings.context_window_fallbacks",
    "router_settings.routing_strategy",
    "router_settings.redis_host",
    "router_settings.redis_port",
    "router_settings.allowed_fails",
    "router_settings.cooldown_time",
    "general_settings.database_url",
    "general_settings.alerting",
    "model_list[0].litellm_params.weight",
    "model_list[1].litellm_params.timeout",
}
HONOURED = {"litellm_settings.num_retries", "litellm_settings.request_timeout"}


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    for name in ("REDIS_HOST", "REDIS_PORT", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def dropin(api_base: str = UPSTREAM) -> dict[str, Any]:
    """The LiteLLM fixture as a dict, its deployments pointed at ``api_base``."""
    data: dict[str, Any] = yaml.safe_load(FIXTURE.read_text(encoding="utf-8").replace("API_BASE", api_base))
    return data


def parsed(data: dict[str, Any]) -> Config:
    return parse_config(data)


def test_non_chat_modes_stay_out_of_chat_routing_and_are_kept_by_mode() -> None:
    config = parsed(dropin())
    assert list(config.arms) == ["gpt-4o#1", "gpt-4o#2", "claude-haiku"]
    assert {name: arm.mode for name, arm in config.arms.items()} == dict.fromkeys(config.arms, "chat")
    assert config.groups["gpt-4o"] == ("gpt-4o#1", "gpt-4o#2")
    embedding = config.arms_by_mode["embedding"]["text-embedding-3-small"]
    assert (embedding.mode, embedding.litellm_model) == ("embedding", "openai/text-embedding-3-small")
    assert list(config.arms_by_mode["image_generation"]) == ["dall-e-3"]
    assert dict(config.arms_by_mode["chat"]) == dict(config.arms)
    assert "text-embedding-3-small" not in config.groups and not config.unavailable


def test_a_misspelt_mode_names_the_allowed_ones() -> None:
    data = dropin()
    data["model_list"][3]["model_info"]["mode"] = "embeding"
    expected = r"model_list\[3\]\.model_info\.mode: must be one of chat, .*embedding"
    with pytest.raises(ConfigError, match=expected):
        parsed(data)


def test_only_non_chat_models_is_a_config_error() -> None:
    data = dropin()
    data["model_list"] = data["model_list"][3:]
    with pytest.raises(ConfigError, match=r"model_list: no model is available .*mode chat"):
        parsed(data)


def test_every_litellm_key_not_honoured_is_named_once_with_advice() -> None:
    notices = parsed(dropin()).notices
    paths = [notice.path for notice in notices]
    assert sorted(paths) == sorted(IGNORED | HONOURED)
    by_path = {notice.path: notice.message for notice in notices}
    assert by_path["litellm_settings.fallbacks"] == f"not honoured: {ADVICE['fallbacks']}"
    assert "groups:" in by_path["litellm_settings.fallbacks"]
    assert "router.policy" in by_path["router_settings.routing_strategy"]
    assert "redis.url" in by_path["router_settings.redis_host"]
    assert "Redis" in by_path["general_settings.database_url"]
    assert by_path["general_settings.alerting"] == "not honoured"
    assert "attempt_timeout_s" in by_path["model_list[1].litellm_params.timeout"]


def test_num_retries_and_request_timeout_are_honoured() -> None:
    config = parsed(dropin())
    assert (config.router.max_attempts, config.router.attempt_timeout_s) == (3, 45.0)
    by_path = {notice.path: notice.message for notice in config.notices}
    assert by_path["litellm_settings.num_retries"] == "honoured as router.max_attempts = 3"
    assert by_path["litellm_settings.request_timeout"] == "honoured as router.attempt_timeout_s = 45"
    assert "general_settings.master_key" not in by_path
    assert config.server.master_key == "sk-master-dropin"


def test_router_settings_timeout_maps_and_our_keys_win() -> None:
    data = dropin()
    del data["litellm_settings"]["request_timeout"]
    data["router_settings"]["timeout"] = 12
    assert parsed(data).router.attempt_timeout_s == 12.0
    data["router"] = {"max_attempts": 5, "attempt_timeout_s": 7}
    config = parsed(data)
    assert (config.router.max_attempts, config.router.attempt_timeout_s) == (5, 7.0)
    by_path = {notice.path: notice.message for notice in config.notices}
    assert by_path["litellm_settings.num_retries"] == "not used: router.max_attempts is set and wins"
    assert by_path["router_settings.timeout"] == "not used: router.attempt_timeout_s is set and wins"


def test_deployment_retry_params_are_not_passed_on() -> None:
    config = parsed(dropin())
    assert "timeout" not in config.arms["gpt-4o#2"].params
    assert "weight" not in config.arms["gpt-4o#1"].params and config.arms["gpt-4o#1"].rpm == 600


def test_an_unknown_provider_leaves_the_model_unavailable_with_a_hint() -> None:
    data = dropin()
    data["model_list"][2]["litellm_params"]["model"] = "opnai/claude-haiku"
    config = parsed(data)
    assert "claude-haiku" not in config.arms
    assert config.unavailable["claude-haiku"] == (
        "model_list[2].litellm_params.model: unknown provider 'opnai' (did you mean 'openai'?); "
        "litellm knows e.g. openai, anthropic, azure"
    )


def test_custom_llm_provider_is_checked_instead_of_the_prefix() -> None:
    data = dropin()
    params = data["model_list"][2]["litellm_params"]
    params.update(model="meta-llama/Llama-3.1-8B", custom_llm_provider="hosted_vllm")
    assert "claude-haiku" in parsed(data).arms
    params["custom_llm_provider"] = "hosted_vlm"
    assert "custom_llm_provider: unknown provider 'hosted_vlm'" in parsed(data).unavailable["claude-haiku"]
    del params["custom_llm_provider"]
    assert "model: unknown provider 'meta-llama'" in parsed(data).unavailable["claude-haiku"]


def test_a_model_without_provider_prefix_is_left_to_litellm() -> None:
    data = dropin()
    data["model_list"][2]["litellm_params"]["model"] = "gpt-4o"
    assert "claude-haiku" in parsed(data).arms


@pytest.mark.parametrize(
    "api_base",
    ["localhost:8000/v1", "http://", "ftp://host/v1", "http://host:port/v1", " http://host/v1", "", 8000],
)
def test_a_malformed_api_base_leaves_the_model_unavailable(api_base: object) -> None:
    data = dropin()
    data["model_list"][2]["litellm_params"]["api_base"] = api_base
    config = parsed(data)
    assert "claude-haiku" not in config.arms
    reason = config.unavailable["claude-haiku"]
    assert reason.startswith("model_list[2].litellm_params.api_base: ")
    assert "e.g. http://localhost:8000/v1" in reason


@pytest.mark.parametrize("api_base", ["http://localhost:8000/v1", "https://api.example.com", "http://[::1]:80/v1"])
def test_a_wellformed_api_base_is_accepted(api_base: str) -> None:
    data = dropin()
    data["model_list"][2]["litellm_params"]["api_base"] = api_base
    assert "claude-haiku" in parsed(data).arms


def test_the_provider_list_is_litellms() -> None:
    import litellm
    from litellm.llms.openai_like.json_loader import JSONProviderRegistry

    ours = provider_names()
    assert ours is not None
    theirs = {str(getattr(p, "value", p)) for p in litellm.provider_list}
    theirs |= set(JSONProviderRegistry.list_providers())
    assert theirs <= ours
    assert {"openai", "anthropic", "azure", "hosted_vllm", "ollama"} <= ours and "opnai" not in ours


def edited(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(dropin())
    node: Any = data
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(key, str) else node[key]
    node[path[-1]] = value
    return data


MISSPELT: dict[str, tuple[dict[str, Any], str]] = {
    "litelm_params": (
        {**dropin(), "model_list": [{"model_name": "m", "litelm_params": {"model": "openai/m"}}]},
        "model_list[0].litelm_params: unknown key (allowed here: litellm_params, model_info, model_name)",
    ),
    "router.reward.latncy": (
        edited(("router", "reward", "latncy"), 0.2),
        "router.reward.latncy: unknown key (allowed here: cost, cost_target_usd, latency, "
        "latency_target_s, quality, ttft_target_s)",
    ),
    "agents.a.reward.qualty": (
        edited(("agents", "a", "reward", "qualty"), 0.5),
        "agents.a.reward.qualty: unknown key (allowed here: cost, ",
    ),
    "router.quality.empy": (
        edited(("router", "quality", "empy"), 0.5),
        "router.quality.empy: unknown key (allowed here: bad_tool_call, empty, enabled, ",
    ),
    "router.policy_options.evidnce_scale": (
        edited(("router", "policy_options", "evidnce_scale"), 2),
        "router.policy_options.evidnce_scale: unknown key (allowed here: change_keep, change_memory, "
        "change_z, choice_discount, ",
    ),
    "simulator.models.m.latncy_ms": (
        {**dropin(), "simulator": {"models": {"m": {"latncy_ms": 5}}}},
        "simulator.models.m.latncy_ms: unknown key (allowed here: bad_json_rate, bad_tool_call_rate, ",
    ),
    "simulator value of the wrong type": (
        {**dropin(), "simulator": {"models": {"m": {"latency_ms": "slow"}}}},
        "simulator.models.m.latency_ms: profile field 'latency_ms' has the wrong type: 'slow'",
    ),
    "policy_options of fixed": (
        {**dropin(), "router": {"policy": "fixed", "policy_options": {"min_tries": 1}}},
        "router.policy_options.min_tries: unknown key (allowed here: none)",
    ),
}


@pytest.mark.parametrize("case", list(MISSPELT))
def test_a_misspelt_key_is_named_with_the_allowed_ones(case: str) -> None:
    data, message = MISSPELT[case]
    with pytest.raises(ConfigError) as caught:
        parsed(data)
    assert str(caught.value).startswith(message)
    assert "__init__" not in str(caught.value) and "unexpected keyword" not in str(caught.value)


WRONG_TYPE: dict[str, tuple[Any, str]] = {
    "nested_pool": ("no", "router.policy_options.nested_pool: must be true or false, got str 'no'"),
    "use_context": (1, "router.policy_options.use_context: must be true or false, got int 1"),
    "min_tries": ("five", "router.policy_options.min_tries: must be a number, got str 'five'"),
    "propensity_draws": (6.5, "router.policy_options.propensity_draws: must be an integer, got float 6.5"),
}


@pytest.mark.parametrize("option", list(WRONG_TYPE))
def test_a_policy_option_of_the_wrong_type_is_named_with_the_type_it_needs(option: str) -> None:
    value, message = WRONG_TYPE[option]
    with pytest.raises(ConfigError) as caught:
        parsed(edited(("router", "policy_options", option), value))
    assert str(caught.value) == message


def test_policy_options_keep_the_type_of_their_default() -> None:
    options = {"nested_pool": True, "min_tries": 2, "propensity_draws": 8, "evidence_scale": 1.5}
    config = parsed(edited(("router", "policy_options"), options))
    read = dict(config.router.policy_options)
    assert read == options
    assert read["nested_pool"] is True and isinstance(read["min_tries"], float)
    assert isinstance(read["propensity_draws"], int)


def write_config(folder: Path, server: dict[str, Any] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = dropin()
    if server is not None:
        data["server"] = server
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_the_default_state_file_is_absolute_next_to_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path / "one")
    first = load_config(Path("one") / "config.yaml")
    second = load_config(write_config(tmp_path / "two"))
    assert first.server.state_file == str(tmp_path / "one" / STATE_FILE)
    assert second.server.state_file == str(tmp_path / "two" / STATE_FILE)


def test_a_relative_state_file_resolves_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    relative = load_config(write_config(tmp_path / "conf", {"state_file": "state/mm.json"}))
    assert relative.server.state_file == str(tmp_path / "conf" / "state" / "mm.json")
    absolute = load_config(write_config(tmp_path / "abs", {"state_file": str(tmp_path / "x.json")}))
    assert absolute.server.state_file == str(tmp_path / "x.json")


def test_a_config_not_read_from_a_file_keeps_the_relative_default() -> None:
    assert parsed(dropin()).server.state_file == STATE_FILE


def test_a_mapped_key_given_twice_names_the_one_not_used() -> None:
    data = dropin()
    data["router_settings"].update(num_retries=9, timeout=20)
    config = parsed(data)
    assert (config.router.max_attempts, config.router.attempt_timeout_s) == (3, 20.0)
    by_path = {notice.path: notice.message for notice in config.notices}
    assert by_path["router_settings.num_retries"] == (
        "not used: litellm_settings.num_retries sets the same router setting"
    )
    assert by_path["litellm_settings.request_timeout"] == (
        "not used: router_settings.timeout sets the same router setting"
    )
    assert by_path["router_settings.timeout"] == "honoured as router.attempt_timeout_s = 20"
