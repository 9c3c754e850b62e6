"""Prices a deployment declares in config (LiteLLM's ``input_cost_per_token`` keys)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proxy.config.settings import Arm
from proxy.forwarding.base import Usage

UnitPrices = tuple[float, float]
"""USD per prompt token and per completion token."""


def configured_prices(arm: Arm) -> UnitPrices | None:
    """Prices from ``model_info`` or ``litellm_params``, when both are given."""
    return _prices(arm.info) or _prices(arm.params)


def cost_of(prices: UnitPrices | None, usage: Usage) -> float | None:
    if prices is None:
        return None
    return prices[0] * usage.prompt_tokens + prices[1] * usage.completion_tokens


def _prices(values: Mapping[str, Any]) -> UnitPrices | None:
    prompt, completion = values.get("input_cost_per_token"), values.get("output_cost_per_token")
    if isinstance(prompt, int | float) and isinstance(completion, int | float):
        return float(prompt), float(completion)
    return None
