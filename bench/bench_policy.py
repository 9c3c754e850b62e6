"""Microseconds per decision of ThompsonPolicy.rank (and feature extraction).

Run: python bench/bench_policy.py   (prints figures; not a test)
"""

from __future__ import annotations

import random
import time

from policies.base import POOLED, DecisionRequest, Evidence, Table
from policies.features import extract_context
from policies.thompson import ThompsonPolicy

REPEATS = 20_000


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
    start = time.perf_counter()
    for _ in range(REPEATS):
        policy.rank(request, snapshot, rng)
    return (time.perf_counter() - start) / REPEATS * 1e6


def bench_features() -> float:
    """Mean microseconds per extract_context() on a typical multiple-choice prompt."""
    prompt = "Which gas do plants absorb?\nA) oxygen\nB) carbon dioxide\nC) argon\nD) neon\n" * 3
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": prompt}]
    start = time.perf_counter()
    for _ in range(REPEATS):
        extract_context(messages)
    return (time.perf_counter() - start) / REPEATS * 1e6


def main() -> None:
    for candidates in (3, 11):
        micros = bench_rank(candidates)
        print(
            f"rank, {candidates:2d} candidates: {micros:6.1f} us/decision "
            f"({micros / candidates:.2f} us/candidate)"
        )
    print(f"extract_context:      {bench_features():6.1f} us/prompt")


if __name__ == "__main__":
    main()
