"""Thompson sampling through the real MemoryStore with half-life decay."""

from __future__ import annotations

import random
from collections import Counter

from support.clocks import FakeClock as Clock

from policies.base import DecisionRequest
from policies.thompson import ThompsonPolicy
from storage.embedded.store import MemoryStore


async def _step(policy: ThompsonPolicy, store: MemoryStore, rates: dict[str, float],
                rng: random.Random) -> str:
    request = DecisionRequest("bot", "chat", ("a", "b"))
    snapshot = await store.load(policy.tables(request), request.candidates)
    choice = policy.rank(request, snapshot, rng).choice
    reward = 1.0 if rng.random() < rates[choice] else 0.0
    await store.apply(policy.deltas(request, choice, reward))
    return choice


async def _late_share_of_b(half_life_s: float | None) -> float:
    clock, rng = Clock(), random.Random(21)
    store = MemoryStore(half_life_s=half_life_s, clock=clock)
    policy = ThompsonPolicy()
    before, after = {"a": 0.8, "b": 0.5}, {"a": 0.2, "b": 0.5}
    for step in range(1000):
        clock.now = float(step)
        await _step(policy, store, before, rng)
    picks: Counter[str] = Counter()
    for step in range(1000, 1300):
        clock.now = float(step)
        choice = await _step(policy, store, after, rng)
        picks[choice] += 1 if step >= 1150 else 0
    return picks["b"] / 150


async def test_half_life_moves_away_from_a_degraded_model() -> None:
    assert await _late_share_of_b(half_life_s=50.0) > 0.8


async def test_without_decay_the_old_lead_lingers() -> None:
    assert await _late_share_of_b(half_life_s=None) < 0.5
