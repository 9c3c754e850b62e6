"""The ``telemetry`` section: off by default, validated keys."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.config.settings import ConfigError, TelemetrySettings, parse_config

MODELS: dict[str, Any] = {
    "model_list": [{"model_name": "m1", "litellm_params": {"model": "openai/m1", "api_key": "k"}}]
}


def test_telemetry_is_off_without_the_section() -> None:
    assert parse_config(MODELS).telemetry == TelemetrySettings(enabled=False)


def test_an_endpoint_turns_telemetry_on_with_the_default_service_name() -> None:
    config = parse_config({**MODELS, "telemetry": {"otlp_endpoint": "http://collector:4318/v1/traces"}})
    assert config.telemetry == TelemetrySettings(True, "http://collector:4318/v1/traces", "model-manager")


def test_enabled_false_wins_over_an_endpoint() -> None:
    section = {"otlp_endpoint": "https://c/v1/traces", "enabled": False, "service_name": "router-eu"}
    assert parse_config({**MODELS, "telemetry": section}).telemetry == TelemetrySettings(
        False, "https://c/v1/traces", "router-eu"
    )


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"endpoint": "http://c"}, "telemetry.endpoint: unknown key"),
        ({"otlp_endpoint": "collector:4318"}, "telemetry.otlp_endpoint: must be an http(s) URL"),
        ({"enabled": "yes"}, "telemetry.enabled: must be true or false"),
        ({"service_name": 3}, "telemetry.service_name: must be a string"),
    ],
)
def test_bad_telemetry_settings_name_the_key(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_config({**MODELS, "telemetry": section})
