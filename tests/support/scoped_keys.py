"""Keys for the scoped-key tests: each key string, its ``keys:`` entry, and a config using them."""

from __future__ import annotations

import hashlib
from typing import Any

from support.servers import FakeUpstream
from support.tracking_support import config_dict

MASTER = "sk-mm-master-7f3a91c2e5"
CHAT_A = "sk-mm-chat-team-a-4b8d20"
ADMIN_A = "sk-mm-admin-team-a-9c1e77"
OPS = "sk-mm-ops-everything-52af03"
LIMITED = "sk-mm-limited-rpm-6d2290"
WRONG = "sk-mm-not-configured-0000"
CLIENT_KEYS = {"master": MASTER, "chat-a": CHAT_A, "admin-a": ADMIN_A, "ops": OPS, "limited": LIMITED}
LIMITED_RPM = 3


def hashed(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def keys_section() -> dict[str, Any]:
    """chat-a: chat for team-a-* on m1 and auto; admin-a: admin for team-a-*; ops: both scopes,
    every agent (from the environment: MM_TEST_OPS_KEY); limited: chat at LIMITED_RPM."""
    return {
        "chat-a": {"key": hashed(CHAT_A), "agents": ["team-a-*"], "models": ["m1", "auto"],
                   "scopes": ["chat"]},
        "admin-a": {"key": hashed(ADMIN_A), "agents": ["team-a-*"], "scopes": ["admin"]},
        "ops": {"key": "os.environ/MM_TEST_OPS_KEY", "agents": ["*"], "scopes": ["chat", "admin"]},
        "limited": {"key": hashed(LIMITED), "agents": ["*"], "rpm": LIMITED_RPM},
    }


def keyed_config(upstream: FakeUpstream) -> dict[str, Any]:
    """Two chat models and an embedding model on the fake upstream, the master key and the keys."""
    config = config_dict(upstream, server={"master_key": MASTER}, keys=keys_section())
    params = {"model": "openai/e1", "api_base": upstream.url, "api_key": "sk-test-secret-123456"}
    entry = {"model_name": "e1", "litellm_params": params, "model_info": {"mode": "embedding"}}
    config["model_list"].append(entry)
    return config
