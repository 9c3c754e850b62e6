"""`model-manager check` and `serve` on a typical LiteLLM proxy config: every LiteLLM key we
do not honour is listed once, a bad provider is reported as unavailable, check stays fast
(litellm is not imported), and two proxies started from one folder keep separate state files."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import openai
import pytest
from support.paths import DATA
from support.servers import FakeUpstream, ProxyProcess

from proxy.cli.loading import STATE_FILE_ENV, load
from proxy.config.settings import STATE_FILE
from storage.embedded.database import database_path

MASTER = "sk-master-dropin"
ENV = {"MM_DROPIN_OPENAI_KEY": "sk-dropin", "MM_DROPIN_MASTER_KEY": MASTER, "REDIS_URL": ""}
NOTICE = "litellm key: "
LOGGED = "config: LiteLLM key "
TYPO = """
  - model_name: typo
    litellm_params:
      model: opnai/gpt-4o
      api_base: localhost:8000/v1
"""


def write_dropin(folder: Path, api_base: str = "http://127.0.0.1:9/v1", *, typo: bool = False) -> Path:
    """The LiteLLM fixture in ``folder``/config.yaml (with a misspelt provider when ``typo``)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = (DATA / "litellm_proxy_config.yaml").read_text(encoding="utf-8").replace("API_BASE", api_base)
    if typo:
        text = text.replace("\nlitellm_settings:", TYPO + "\nlitellm_settings:", 1)
    path = folder / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def run_check(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    executable = Path(sys.executable).with_name("model-manager")
    return subprocess.run(
        [str(executable), "check", "--config", str(config), *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**_environ(), **ENV},
    )


def _environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("REDIS_HOST", "REDIS_PORT", "DATABASE_URL")}


def test_check_lists_every_unhonoured_litellm_key_once(tmp_path: Path) -> None:
    result = run_check(write_dropin(tmp_path, typo=True))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith(": ok (3 models, 0 agents)")
    notices = [line.removeprefix(NOTICE) for line in lines if line.startswith(NOTICE)]
    paths = Counter(notice.split(":", 1)[0] for notice in notices)
    assert len(paths) == 17 and set(paths.values()) == {1}
    assert "litellm_settings.fallbacks: not honoured: " in "\n".join(notices)
    assert "litellm_settings.num_retries: honoured as router.max_attempts = 3" in notices
    unavailable = [line for line in lines if line.startswith("unavailable: typo: ")]
    assert unavailable == [
        "unavailable: typo: model_list[5].litellm_params.model: unknown provider 'opnai' "
        "(did you mean 'openai'?); litellm knows e.g. openai, anthropic, azure"
    ]
    assert "Traceback" not in result.stderr


def test_check_strict_fails_on_a_malformed_api_base(tmp_path: Path) -> None:
    config = write_dropin(tmp_path, typo=True)
    config.write_text(config.read_text(encoding="utf-8").replace("opnai/", "openai/"), encoding="utf-8")
    result = run_check(config, "--strict")
    assert result.returncode == 1
    assert "unavailable: typo: model_list[5].litellm_params.api_base: 'localhost:8000/v1' is not an " in (
        result.stdout
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("litellm_params:", "model_list[0].litelm_params: unknown key (allowed here: litellm_params, "),
        ("mode: chat", "model_list[0].model_info.mode: must be one of chat, completion"),
    ],
)
def test_check_names_a_misspelt_key(tmp_path: Path, text: str, expected: str) -> None:
    config = write_dropin(tmp_path)
    wrong = "litelm_params:" if text == "litellm_params:" else "mode: chatt"
    config.write_text(config.read_text(encoding="utf-8").replace(text, wrong, 1), encoding="utf-8")
    result = run_check(config)
    assert result.returncode == 2
    assert result.stderr.startswith("config error: " + expected)
    assert "__init__" not in result.stderr and "Traceback" not in result.stderr


def test_check_does_not_import_litellm(tmp_path: Path) -> None:
    config = write_dropin(tmp_path, typo=True)
    probe = (
        "import sys; from proxy.cli.main import main; code = main(['check', '--config', sys.argv[1]]); "
        "print('litellm loaded' if 'litellm' in sys.modules else 'litellm not loaded'); sys.exit(code)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**_environ(), **ENV},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "litellm not loaded"


def test_two_proxies_from_one_folder_keep_their_own_state_files(
    tmp_path: Path, fake_upstream: FakeUpstream
) -> None:
    shared = tmp_path / "cwd"
    shared.mkdir()
    configs = [write_dropin(tmp_path / name, fake_upstream.url) for name in ("team-a", "team-b")]
    servers = [ProxyProcess(config, cwd=shared, env=ENV) for config in configs]
    outputs = []
    with ExitStack() as stack:
        for server in servers:  # both running at once, from the same working directory
            stack.enter_context(server)
        for server in servers:
            sdk = openai.OpenAI(
                base_url=f"{server.url}/v1", api_key=MASTER, max_retries=0, default_headers={"X-Agent": "a"}
            )
            with sdk:
                sdk.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
        for server in servers:
            server.stop()
            outputs.append(server.output())
    for config, output in zip(configs, outputs, strict=True):
        assert database_path(config.parent / STATE_FILE).is_file(), output[-2000:]
        logged = [line for line in output.splitlines() if LOGGED in line]
        assert sum("litellm_settings.fallbacks:" in line for line in logged) == 1, output[-2000:]
    assert not list(shared.iterdir())


def test_the_state_file_environment_variable_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    config = write_dropin(tmp_path / "conf")
    monkeypatch.delenv(STATE_FILE_ENV, raising=False)
    assert load(config).server.state_file == str(tmp_path / "conf" / STATE_FILE)
    monkeypatch.setenv(STATE_FILE_ENV, str(tmp_path / "data" / "state.json"))
    assert load(config).server.state_file == str(tmp_path / "data" / "state.json")
