"""Prices from config or litellm's bundled price map, read without importing litellm."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from proxy.config.settings import Arm, parse_config
from proxy.forwarding.price_map import arm_prices, lookup, price_map_path


def _arms(*entries: dict[str, object]) -> list[Arm]:
    config = parse_config({"model_list": list(entries)})
    return list(config.arms.values())


def test_the_installed_price_map_is_found_and_prices_known_models() -> None:
    path = price_map_path()
    assert path is not None and path.name.endswith(".json")
    arms = _arms(
        {"model_name": "mini", "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "k"}},
        {"model_name": "local", "litellm_params": {"model": "openai/my-llama", "api_key": "k"}},
    )
    prices = arm_prices(arms)
    assert prices["local"] is None
    prompt, completion = prices["mini"] or (0.0, 0.0)
    assert 0 < prompt < completion < 1e-3


def test_config_prices_win_over_the_map(tmp_path: Path) -> None:
    table = tmp_path / "map.json"
    table.write_text('{"gpt-4o": {"input_cost_per_token": 1.0, "output_cost_per_token": 2.0}}')
    arms = _arms(
        {"model_name": "a", "litellm_params": {"model": "openai/gpt-4o", "api_key": "k"}},
        {
            "model_name": "b",
            "litellm_params": {"model": "openai/gpt-4o", "api_key": "k"},
            "model_info": {"input_cost_per_token": 0.5, "output_cost_per_token": 0.25},
        },
    )
    assert arm_prices(arms, table) == {"a": (1.0, 2.0), "b": (0.5, 0.25)}


def test_lookup_tries_the_name_without_provider_prefix() -> None:
    table = {"claude-x": {"input_cost_per_token": 3e-6, "output_cost_per_token": 1.5e-5}, "bad": "x"}
    assert lookup(table, "anthropic/claude-x") == (3e-6, 1.5e-5)
    assert lookup(table, "bad") is None
    assert lookup(table, "unknown") is None


def test_a_missing_or_corrupt_map_means_unknown_prices(tmp_path: Path) -> None:
    corrupt = tmp_path / "map.json"
    corrupt.write_bytes(b"\xff not json")
    arms = _arms({"model_name": "a", "litellm_params": {"model": "openai/gpt-4o", "api_key": "k"}})
    assert arm_prices(arms, corrupt) == {"a": None}


def test_pricing_does_not_import_litellm() -> None:
    code = (
        "import sys, proxy; from proxy.config.settings import parse_config;"
        "from proxy.forwarding.price_map import arm_prices;"
        "c = parse_config({'model_list': [{'model_name': 'm', 'litellm_params': "
        "{'model': 'openai/gpt-4o', 'api_key': 'k'}}]});"
        "assert arm_prices(c.arms.values())['m'] is not None;"
        "print('litellm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_proxy_with_only_openai_wire_models_never_imports_litellm() -> None:
    """Served and answering a request (upstream unreachable: the 502 path is enough)."""
    code = (
        "import sys, time, proxy\n"
        "from starlette.testclient import TestClient\n"
        "from proxy.app import create_app\n"
        "from proxy.config.settings import parse_config\n"
        "from storage.embedded.store import MemoryStore\n"
        "from proxy.runtime.state import embedded_state\n"
        "entry = {'model_name': 'm', 'litellm_params': {'model': 'openai/gpt-4o',"
        " 'api_base': 'http://127.0.0.1:9/v1', 'api_key': 'k'}}\n"
        "config = parse_config({'model_list': [entry]})\n"
        "app = create_app(config, state=embedded_state(config, time.time, MemoryStore()))\n"
        "with TestClient(app) as client:\n"
        "    r = client.post('/v1/chat/completions', json={'messages': [{'role': 'user', 'content': 'x'}]})\n"
        "    assert r.status_code == 502, r.text\n"
        "print('litellm' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
