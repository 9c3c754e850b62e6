"""Wildcard model_list entries expanded from the fake upstream's GET /v1/models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from support.proxy_harness import SECRET, model_entry
from support.servers import FakeUpstream, ProxyProcess, free_port
from support.waiting import wait_for

from proxy.config.discovery import expand_wildcards
from proxy.config.reader import ConfigError
from proxy.config.settings import load_config


def wildcard(pattern: str, api_base: str, **info: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "model_name": pattern,
        "litellm_params": {"model": "openai/*", "api_base": api_base, "api_key": SECRET},
    }
    if info:
        entry["model_info"] = info
    return entry


def _write(tmp_path: Path, entries: list[dict[str, Any]], **sections: Any) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"model_list": entries, **sections}))
    return path


def test_star_and_prefix_wildcards_expand(tmp_path: Path, fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_profile("d1")
    fake_upstream.set_profile("d2")
    entries = [wildcard("*", fake_upstream.url), wildcard("sim/*", fake_upstream.url, max_input_tokens=9000)]
    config = load_config(_write(tmp_path, entries), prepare=expand_wildcards)
    assert list(config.arms) == ["d1", "d2", "sim/d1", "sim/d2"]
    assert config.arms["sim/d2"].litellm_model == "openai/d2"
    assert config.arms["sim/d2"].params["api_base"] == fake_upstream.url
    assert config.arms["sim/d2"].max_input_tokens == 9000
    listed = [r for r in fake_upstream.requests() if r["path"] == "/v1/models"]
    assert listed[0]["headers"]["authorization"] == f"Bearer {SECRET}"


def test_unreachable_upstream_contributes_nothing(tmp_path: Path, fake_upstream: FakeUpstream) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    entries = [model_entry("m1", fake_upstream.url), wildcard("gone/*", dead)]
    config = load_config(_write(tmp_path, entries), prepare=expand_wildcards)
    assert list(config.arms) == ["m1"]


@pytest.mark.parametrize(
    ("entry", "key_path"),
    [
        (
            {"model_name": "*", "litellm_params": {"model": "openai/*"}},
            "model_list[0].litellm_params.api_base",
        ),
        (
            {"model_name": "*", "litellm_params": {"model": "openai/x", "api_base": "http://h/v1"}},
            "model_list[0].litellm_params.model",
        ),
        ({"model_name": "a*b", "litellm_params": {"model": "openai/*"}}, "model_list[0].model_name"),
    ],
)
def test_bad_wildcards_name_the_key(tmp_path: Path, entry: dict[str, Any], key_path: str) -> None:
    with pytest.raises(ConfigError, match=key_path.replace("[", r"\[").replace("]", r"\]")):
        load_config(_write(tmp_path, [entry]), prepare=expand_wildcards)


def _models(url: str) -> list[str]:
    return [m["id"] for m in httpx.get(f"{url}/v1/models", timeout=5).json()["data"]]


def test_served_wildcard_routes_and_refreshes(tmp_path: Path, fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_profile("d1")
    server = {"state_file": str(tmp_path / "state.json"), "discovery_interval_s": 0.5}
    path = _write(tmp_path, [wildcard("sim/*", fake_upstream.url)], server=server)
    with ProxyProcess(path, env={"REDIS_URL": ""}) as proxy:
        assert _models(proxy.url) == ["sim/d1", "auto"]
        client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="unused", max_retries=0)
        answer = client.chat.completions.with_raw_response.create(
            model="sim/d1",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"X-Model-Manager-Pin": "1"},
        )
        assert answer.headers["x-model-manager-model"] == "sim/d1"
        assert fake_upstream.bodies()[-1]["model"] == "d1"
        fake_upstream.set_profile("d2")
        wait_for(lambda: _models(proxy.url) == ["sim/d1", "sim/d2", "auto"], timeout=30, interval=0.2)
        assert "reloaded" in proxy.output()
