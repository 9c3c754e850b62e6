"""``keys:``: a key given as os.environ/ or sha256:, never plain; agents required; models, scopes
and rpm validated with errors naming the key path."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from proxy.config.keys import ADMIN, CHAT, digest_of
from proxy.config.settings import ConfigError, parse_config

HEX = hashlib.sha256(b"sk-team-a-0123456789").hexdigest()


def config_with(**entry: Any) -> dict[str, Any]:
    params = {"model": "openai/m1", "api_base": "http://127.0.0.1:9/v1", "api_key": "sk-x"}
    return {"model_list": [{"model_name": "m1", "litellm_params": params}], "keys": {"team-a": entry}}


def test_a_hashed_key_and_an_environment_key_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAM_B_KEY", "sk-team-b-secret-42")
    data = config_with(key=f"sha256:{HEX}", agents=["team-a-*"], models=["m1", "auto"], rpm=5,
                       scopes=["chat", "admin"])
    data["keys"]["team-b"] = {"key": "os.environ/TEAM_B_KEY", "agents": ["*"]}
    a, b = parse_config(data).keys
    assert (a.key_id, a.digest, a.agents, a.models, a.rpm) == ("team-a", bytes.fromhex(HEX), ("team-a-*",),
                                                              ("m1", "auto"), 5)
    assert a.scopes == {CHAT, ADMIN} and a.allows_agent("team-a-writer") and not a.allows_agent("team-b-x")
    assert (b.digest, b.scopes, b.models, b.rpm, b.every_agent) == (digest_of("sk-team-b-secret-42"),
                                                                    {CHAT}, None, None, True)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"key": "sk-team-a-plain-key", "agents": ["a"]}, "keys.team-a.key: must be os.environ/NAME or"),
        ({"key": "sha256:abc", "agents": ["a"]}, "keys.team-a.key: sha256: must be followed by 64"),
        ({"key": "os.environ/MM_TEST_UNSET_KEY", "agents": ["a"]}, "MM_TEST_UNSET_KEY is not set"),
        ({"key": f"sha256:{HEX}"}, "keys.team-a.agents: is required"),
        ({"key": f"sha256:{HEX}", "agents": ["a"], "models": ["nope"]}, "keys.team-a.models: unknown model"),
        ({"key": f"sha256:{HEX}", "agents": ["a"], "scopes": ["root"]}, "keys.team-a.scopes: unknown scope"),
        ({"key": f"sha256:{HEX}", "agents": ["a"], "rpm": 0}, "keys.team-a.rpm: must be between 1"),
        ({"key": f"sha256:{HEX}", "agents": ["a"], "team": "x"}, "keys.team-a.team: unknown key"),
    ],
    ids=["plain", "short-hash", "unset-env", "no-agents", "unknown-model", "unknown-scope", "zero-rpm",
         "unknown-field"],
)
def test_bad_entries_are_config_errors(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config_with(**entry))
    assert message in str(caught.value)
    assert "sk-team-a-plain-key" not in str(caught.value)


def test_master_is_a_reserved_key_id() -> None:
    data = config_with()
    data["keys"] = {"master": {"key": f"sha256:{HEX}", "agents": ["*"]}}
    with pytest.raises(ConfigError, match=r"keys\.master: a key id"):
        parse_config(data)
