"""Unit prices from litellm's bundled price map, read as data (litellm itself is not imported).

litellm ships ``model_prices_and_context_window_backup.json`` in its package; reading it
directly prices OpenAI-wire deployments without the seconds and hundreds of MB that
``import litellm`` costs. Lookups try the deployment's model as configured, then without its
provider prefix (``openai/gpt-4o`` -> ``gpt-4o``).
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from proxy.config.settings import Arm
from proxy.forwarding.pricing import UnitPrices, configured_prices

log = logging.getLogger("model_manager.pricing")

PRICE_MAP_FILE = "model_prices_and_context_window_backup.json"


def price_map_path() -> Path | None:
    """Where the installed litellm keeps its price map, found without importing litellm."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / PRICE_MAP_FILE
    return path if path.is_file() else None


def arm_prices(arms: Iterable[Arm], path: Path | None = None) -> dict[str, UnitPrices | None]:
    """Unit prices per arm name: config first, then the price map; None when unknown."""
    arms = list(arms)
    table = _load(path or price_map_path()) if any(configured_prices(a) is None for a in arms) else {}
    return {arm.name: configured_prices(arm) or lookup(table, arm.litellm_model) for arm in arms}


def lookup(table: Mapping[str, Any], model: str) -> UnitPrices | None:
    """The entry for ``model`` (or its name without the provider prefix), if it has prices."""
    for name in (model, model.split("/", 1)[-1]):
        entry = table.get(name)
        if isinstance(entry, dict):
            prompt, completion = entry.get("input_cost_per_token"), entry.get("output_cost_per_token")
            if isinstance(prompt, int | float) and isinstance(completion, int | float):
                return float(prompt), float(completion)
    return None


def _load(path: Path | None) -> Mapping[str, Any]:
    if path is None:
        log.warning("litellm's price map was not found: costs of unpriced models are unknown")
        return {}
    try:
        table = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        log.warning("cannot read litellm's price map %s: %s", path, exc)
        return {}
    return table if isinstance(table, dict) else {}
