"""Policies and reward weights per agent, built once from config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.base import Beta, Policy
from policies.quality import QualityWeights
from policies.registry import build_policy
from policies.reward import RewardWeights
from proxy.config.reader import ConfigError
from proxy.config.settings import Config


class Router:
    """The policy and the scoring weights for each agent (router defaults otherwise)."""

    def __init__(self, config: Config) -> None:
        self._default = _policy(config, config.router.exploration_rate, "router")
        self._policies = {
            name: _policy(config, agent.exploration_rate, f"agents.{name}")
            for name, agent in config.agents.items()
            if agent.exploration_rate is not None
        }
        self._default_weights = _weights(config.router.reward, config.router.quality, "router")
        self._weights = {
            name: _weights(
                {**config.router.reward, **agent.reward},
                {**config.router.quality, **agent.quality},
                f"agents.{name}",
            )
            for name, agent in config.agents.items()
            if agent.reward or agent.quality
        }

    def policy_for(self, agent: str) -> Policy:
        return self._policies.get(agent, self._default)

    def weights_for(self, agent: str) -> tuple[RewardWeights, QualityWeights]:
        return self._weights.get(agent, self._default_weights)


def _policy(config: Config, exploration_rate: float, path: str) -> Policy:
    options: dict[str, Any] = dict(config.router.policy_options)
    if config.router.policy == "thompson":
        options.setdefault("exploration_rate", exploration_rate)
        options.setdefault("priors", {m: Beta(a, b) for m, (a, b) in config.router.priors.items()})
        options.setdefault("propensity_draws", max(config.router.propensity_samples, 1))
    try:
        return build_policy(config.router.policy, **options)
    except ValueError as exc:
        raise ConfigError(f"{path}.policy_options: {exc}") from exc


def _weights(
    reward: Mapping[str, float], quality: Mapping[str, Any], path: str
) -> tuple[RewardWeights, QualityWeights]:
    try:
        reward_weights = RewardWeights(**reward)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}.reward: {exc}") from exc
    try:
        quality_weights = QualityWeights(**quality)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}.quality: {exc}") from exc
    return reward_weights, quality_weights
