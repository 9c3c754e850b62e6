"""Available models are detected at start: a model whose credentials name an unset
environment variable is left out of routing (and said why), the proxy runs on the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from support.proxy_harness import MESSAGES, ProxyFactory, basic_config, proxy_factory
from support.servers import FakeUpstream

from proxy.cli.main import main
from proxy.config.settings import ConfigError, parse_config

__all__ = ["proxy_factory"]

UNSET = "MM_TEST_UNSET_KEY"


@pytest.fixture(autouse=True)
def _unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(UNSET, raising=False)


def config_with_missing_key(upstream: FakeUpstream, **sections: Any) -> dict[str, Any]:
    """m1, m2 and m3 on the fake upstream; m2's api_key is an unset variable."""
    config = basic_config(upstream, ("m1", "m2", "m3"), **sections)
    config["model_list"][1]["litellm_params"]["api_key"] = f"os.environ/{UNSET}"
    return config


def test_a_model_without_credentials_is_left_out_with_the_reason(fake_upstream: FakeUpstream) -> None:
    config = parse_config(config_with_missing_key(
        fake_upstream,
        groups={"pair": ["m1", "m2"], "lost": ["m2"]},
        agents={"a": {"models": ["m2", "m3"]}, "only": {"models": ["m2"]}, "p": {"pin": "m2"}},
        router={"priors": {"m2": {"alpha": 5}, "m1": {"alpha": 2}}},
    ))
    assert list(config.arms) == ["m1", "m3"]
    assert config.unavailable["m2"] == (
        f"model_list[1].litellm_params.api_key: environment variable {UNSET} is not set"
    )
    assert config.groups["pair"] == ("m1",)
    assert "lost" not in config.groups and "no member is available" in config.unavailable["lost"]
    assert config.agents["a"].models == ("m3",)
    assert config.agents["only"].models == ()
    assert config.agents["p"].pin == "m2"
    assert set(config.router.priors) == {"m1"}


def test_deployments_sharing_a_name_keep_the_available_ones(fake_upstream: FakeUpstream) -> None:
    config = basic_config(fake_upstream, ("m1",))
    entry = config["model_list"][0]
    keyless = {**entry["litellm_params"], "api_key": f"os.environ/{UNSET}"}
    config["model_list"] = [
        {**entry, "model_name": "gpt"},
        {**entry, "model_name": "gpt", "litellm_params": keyless},
        {**entry, "model_name": "solo", "litellm_params": keyless},
    ]
    parsed = parse_config(config)
    assert list(parsed.arms) == ["gpt#1"] and parsed.groups["gpt"] == ("gpt#1",)
    assert set(parsed.unavailable) == {"gpt#2", "solo"}  # "gpt" still has a deployment


def test_no_available_model_is_a_config_error(fake_upstream: FakeUpstream) -> None:
    config = basic_config(fake_upstream, ("m1",))
    config["model_list"][0]["litellm_params"]["api_key"] = f"os.environ/{UNSET}"
    with pytest.raises(ConfigError, match=f"model_list: no model is available .*{UNSET} is not set"):
        parse_config(config)


def test_a_missing_master_key_variable_still_fails(fake_upstream: FakeUpstream) -> None:
    config = basic_config(fake_upstream, ("m1",), server={"master_key": f"os.environ/{UNSET}"})
    with pytest.raises(ConfigError, match=f"server.master_key: environment variable {UNSET}"):
        parse_config(config)


def test_check_lists_unavailable_models_and_strict_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_upstream: FakeUpstream
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config_with_missing_key(fake_upstream)), encoding="utf-8")
    assert main(["check", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "ok (2 models" in out and "unavailable: m2: model_list[1].litellm_params.api_key: " in out
    assert main(["check", "--config", str(path), "--strict"]) == 1


def test_the_proxy_serves_the_rest_and_answers_503_for_the_missing_one(
    proxy_factory: ProxyFactory, fake_upstream: FakeUpstream
) -> None:
    proxy = proxy_factory(config_with_missing_key(
        fake_upstream,
        router={"model_field": "respect"},
        agents={"only": {"models": ["m2"]}, "p": {"pin": "m2"}},
    ))
    listed = {m.id for m in proxy.client().models.list()}
    assert "m2" not in listed and {"m1", "m3"} <= listed
    with proxy.client() as client, pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("m2")
    assert "configured but unavailable" in str(missing.value.body)
    ready = httpx.get(f"{proxy.base_url.removesuffix('/v1')}/ready", timeout=5).json()
    assert ready["models"] == 2 and set(ready["unavailable_models"]) == {"m2"}
    with proxy.client(agent="any") as client:
        assert client.chat.completions.create(model="auto", messages=MESSAGES).model == "m1"
        for model, agent, headers in (
            ("m2", "any", {}),
            ("m2", "any", {"X-Model-Manager-Pin": "true"}),
            ("auto", "only", {}),
            ("auto", "p", {}),
        ):
            with pytest.raises(openai.APIStatusError) as raised:
                client.chat.completions.create(
                    model=model, messages=MESSAGES, extra_headers={"X-Agent": agent, **headers}
                )
            assert raised.value.status_code == 503
            error = raised.value.body
            assert isinstance(error, dict) and error["code"] == "model_unavailable", error
            assert UNSET not in str(error)  # the client is not told the variable's name
