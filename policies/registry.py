"""Build a policy by name from keyword options (as found in config)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from policies.base import Policy
from policies.baselines import FixedPolicy, UniformPolicy
from policies.thompson import ThompsonPolicy


def _thompson(**options: Any) -> Policy:
    return ThompsonPolicy(name="thompson", **options)


def _thompson_pooled(**options: Any) -> Policy:
    return ThompsonPolicy(name="thompson-pooled", **{"use_context": False, **options})


def _thompson_plain(**options: Any) -> Policy:
    defaults = {
        "use_context": False, "pool_strength": 0.0, "evidence_scale": 1.0, "min_tries": 0.0,
        "choice_discount": 0.0, "change_memory": 0.0, "scale_models": 0.0,
    }
    return ThompsonPolicy(name="thompson-plain", **{**defaults, **options})


def _builders() -> dict[str, Callable[..., Policy]]:
    return {
        "thompson": _thompson,
        "thompson-pooled": _thompson_pooled,
        "thompson-plain": _thompson_plain,
        "fixed": FixedPolicy,
        "uniform": UniformPolicy,
    }


POLICY_NAMES: tuple[str, ...] = tuple(_builders())
"""Every name ``build_policy`` accepts."""


def build_policy(name: str, **options: Any) -> Policy:
    """The policy called ``name``, built with ``options``.

    "thompson" pools across agents and uses prompt context; "thompson-pooled"
    pools without context; "thompson-plain" is textbook Thompson sampling per agent
    (no pooling, no context, a constant evidence_scale 1, no minimum tries, no discount, no change
    detector). Raises ValueError for an unknown name (naming the allowed ones) or an option the policy lacks.
    """
    builder = _builders().get(name)
    if builder is None:
        raise ValueError(f"unknown policy {name!r}; allowed: {', '.join(POLICY_NAMES)}")
    try:
        return builder(**options)
    except TypeError as error:
        raise ValueError(f"bad options for policy {name!r}: {error}") from error
