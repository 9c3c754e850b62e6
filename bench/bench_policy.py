"""Microseconds per decision of ThompsonPolicy.rank and .propensity (and feature extraction).

Run: python bench/bench_policy.py   (prints figures; not a test)
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from policies.base import POOLED, DecisionRequest, Evidence, Table
from policies.features import extract_context
from policies.thompson import ThompsonPolicy

REPEATS = 20_000
ROUNDS = 5
"""Each figure is the best of ROUNDS timed loops: the machine's noise only ever adds time."""


def _snapshot(request: DecisionRequest, rng: random.Random) -> dict[Table, dict[str, Evidence]]:
    tables = (Table(POOLED), Table(request.agent), Table(request.agent, request.context))
    return {
        t: {m: Evidence(rng.uniform(0, 500), rng.uniform(0, 500)) for m in request.candidates} for t in tables
    }


def bench_rank(candidates: int) -> float:
    """Mean microseconds per rank() over REPEATS decisions."""
    rng = random.Random(0)
    request = DecisionRequest("bot", "code", tuple(f"model-{i}" for i in range(candidates)))
    snapshot, policy = _snapshot(request, rng), ThompsonPolicy()
    return _best_of(lambda: policy.rank(request, snapshot, rng), REPEATS // ROUNDS)


def bench_propensity(candidates: int, repeats: int = REPEATS // 4) -> float:
    """Mean microseconds per propensity() (what the proxy runs after each response)."""
    rng = random.Random(0)
    request = DecisionRequest("bot", "code", tuple(f"model-{i}" for i in range(candidates)))
    snapshot, policy = _snapshot(request, rng), ThompsonPolicy(exploration_rate=0.02)
    model = request.candidates[0]
    return _best_of(lambda: policy.propensity(request, snapshot, model, rng), repeats // ROUNDS)


def bench_features() -> float:
    """Mean microseconds per extract_context() on a typical multiple-choice prompt."""
    prompt = "Which gas do plants absorb?\nA) oxygen\nB) carbon dioxide\nC) argon\nD) neon\n" * 3
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": prompt}]
    return _best_of(lambda: extract_context(messages), REPEATS // ROUNDS)


def _best_of(call: Callable[[], object], repeats: int) -> float:
    """Microseconds per call, the best of ROUNDS loops of ``repeats`` calls."""
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(repeats):
            call()
        best = min(best, (time.perf_counter() - start) / repeats)
    return best * 1e6


def main() -> None:
    for candidates in (3, 11):
        micros = bench_rank(candidates)
        print(
            f"rank, {candidates:2d} candidates: {micros:6.1f} us/decision "
            f"({micros / candidates:.2f} us/candidate)"
        )
    for candidates in (3, 11):
        print(f"propensity, {candidates:2d} candidates: {bench_propensity(candidates):6.1f} us/response")
    print(f"extract_context:      {bench_features():6.1f} us/prompt")


if __name__ == "__main__":
    main()
