"""`model-manager check --config`: bad files exit 2 with a message naming the key path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.paths import REPO

from proxy.cli.main import main


def valid() -> dict[str, Any]:
    entry = {
        "model_name": "m1",
        "litellm_params": {"model": "openai/m1", "api_base": "http://127.0.0.1:9/v1", "api_key": "k"},
    }
    return {"model_list": [entry], "agents": {"a": {"models": ["m1"]}}}


def write(tmp_path: Path, config: Any) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["check", "--config", str(path)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def with_change(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """A valid config with ``value`` set at ``path`` (created as needed)."""
    config = valid()
    node: Any = config
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(key, str) else node[key]
    node[path[-1]] = value
    return config


BAD: dict[str, tuple[dict[str, Any], str]] = {
    "unknown router key": (with_change(("router", "bogus"), 1), "router.bogus: unknown key"),
    "unknown top-level key": (with_change(("modle_list",), []), "modle_list: unknown key"),
    "unknown agent key": (with_change(("agents", "a", "modles"), ["m1"]), "agents.a.modles: unknown key"),
    "missing env var": (
        with_change(("model_list", 0, "litellm_params", "api_key"), "os.environ/MM_TEST_NOPE_VAR"),
        "model_list: no model is available (model_list[0].litellm_params.api_key: "
        "environment variable MM_TEST_NOPE_VAR is not set)",
    ),
    "agent names unregistered model": (
        with_change(("agents", "a", "models"), ["ghost"]),
        "agents.a.models: 'ghost' is not a registered model",
    ),
    "agent pins unregistered model": (
        with_change(("agents", "a", "pin"), "ghost"),
        "agents.a.pin: 'ghost' is not a registered model",
    ),
    "group names unregistered model": (
        with_change(("groups", "g"), ["m1", "ghost"]),
        "groups.g: 'ghost' is not a registered model",
    ),
    "integer as string": (
        with_change(("router", "max_attempts"), "three"),
        "router.max_attempts: must be an integer",
    ),
    "rate out of range": (
        with_change(("router", "exploration_rate"), 2),
        "router.exploration_rate: must be between",
    ),
    "unknown policy": (with_change(("router", "policy"), "magic"), "router.policy: must be one of"),
    "master key not a string": (
        with_change(("server", "master_key"), 5),
        "server.master_key: must be a string",
    ),
    "models not a list": (with_change(("agents", "a", "models"), "m1"), "agents.a.models: must be a list"),
    "model missing": (
        with_change(("model_list", 0, "litellm_params"), {"api_key": "k"}),
        "model_list[0].litellm_params.model: is required",
    ),
    "empty model list": (with_change(("model_list",), []), "model_list: must be a non-empty list"),
    "wildcard deployment": (
        with_change(("model_list", 0, "model_name"), "*"),
        "model_list[0].litellm_params.model: a wildcard entry needs a model ending in '*'",
    ),
    "section not a mapping": (with_change(("router",), [1, 2]), "router: must be a mapping"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_config_exits_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    monkeypatch.delenv("MM_TEST_NOPE_VAR", raising=False)
    config, message = BAD[case]
    code, output = check(write(tmp_path, config), capsys)
    assert code == 2
    assert "config error: " + message in output


def test_env_var_is_resolved_when_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MM_TEST_KEY", "sk-from-env")
    config = with_change(("model_list", 0, "litellm_params", "api_key"), "os.environ/MM_TEST_KEY")
    code, output = check(write(tmp_path, config), capsys)
    assert code == 0 and "ok (1 models, 1 agents)" in output
    assert "sk-from-env" not in output


def test_missing_file_and_bad_yaml_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, output = check(tmp_path / "absent.yaml", capsys)
    assert code == 2 and "cannot read config file" in output
    broken = tmp_path / "broken.yaml"
    broken.write_text("model_list: [\n", encoding="utf-8")
    code, output = check(broken, capsys)
    assert code == 2 and "not valid YAML" in output


def test_shipped_config_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    code, output = check(REPO / "config.yaml", capsys)
    assert code == 0, output


def test_console_script_exit_code(tmp_path: Path) -> None:
    path = write(tmp_path, with_change(("router", "bogus"), 1))
    result = subprocess.run(
        [sys.executable, "-m", "proxy", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "router.bogus: unknown key" in result.stderr
    assert "Traceback" not in result.stderr
