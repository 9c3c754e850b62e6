"""Figures of one replay of a :class:`~policies.replay.scenarios.Stream`, computed in hindsight.

- best fixed: per (agent, phase), the candidate with the highest total reward over that
  agent's requests of that phase; their sum is the baseline the policy is a share of.
- oracle: the best candidate's reward on every request; random: the candidates' mean.
- gap closed: (policy - random) / (oracle - random), the share of the way from uniform
  random to the per-request oracle.
- recovery, per phase boundary: for each agent with at least ``RECOVERY_MIN_REQUESTS``
  (two windows) requests in the phase that starts there, how many of that agent's requests
  pass until, over its last ``RECOVERY_WINDOW`` requests of the phase, the phase's best
  fixed model (for that agent) took >= 80% of its first choices; the worst over those
  agents, None ("never") when one of them does not get there before the phase ends. When
  no agent has that many requests in the phase, the busiest agent is measured if it has a
  full window; else None. The phase's requests of every agent count, however few the
  phase holds in all (a 1,000-request outage shared by 5 agents is measured).
- regret curve: cumulative (best fixed reward - policy reward), at ``points`` steps.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from policies.replay.scenarios import Stream

RECOVERY_WINDOW = 100
RECOVERY_SHARE = 0.8
RECOVERY_MIN_REQUESTS = 2 * RECOVERY_WINDOW


@dataclass(frozen=True, slots=True)
class RunFigures:
    """Mean reward per request of the policy and baselines, recovery, regret curve."""

    policy: float
    best_fixed: float
    oracle: float
    random: float
    recovery: tuple[int | None, ...]
    regret: tuple[float, ...]

    @property
    def share(self) -> float:
        """Policy / best fixed per agent (per phase)."""
        return self.policy / self.best_fixed if self.best_fixed > 0 else float("nan")

    @property
    def gap_closed(self) -> float:
        """(policy - random) / (oracle - random)."""
        span = self.oracle - self.random
        return (self.policy - self.random) / span if span > 0 else float("nan")


def figures(stream: Stream, picks: Sequence[int], *, points: int = 50,
            min_requests: int = RECOVERY_MIN_REQUESTS) -> RunFigures:
    """Every figure of one replay (``picks``: model index chosen at each step)."""
    n = len(picks)
    best = best_fixed_models(stream)
    index = {m: i for i, m in enumerate(stream.models)}
    got = [stream.rewards[t][picks[t]] for t in range(n)]
    fixed = [stream.rewards[t][best[_group(stream, t)]] for t in range(n)]
    oracle = random_sum = 0.0
    for t in range(n):
        values = [stream.rewards[t][index[m]] for m in stream.requests[t].candidates]
        oracle += max(values)
        random_sum += sum(values) / len(values)
    return RunFigures(
        policy=sum(got) / n,
        best_fixed=sum(fixed) / n,
        oracle=oracle / n,
        random=random_sum / n,
        recovery=recoveries(stream, picks, best, min_requests=min_requests),
        regret=_curve(fixed, got, points),
    )


def _group(stream: Stream, t: int) -> tuple[str, int]:
    return stream.requests[t].agent, stream.phases[t]


def best_fixed_models(stream: Stream) -> dict[tuple[str, int], int]:
    """Per (agent, phase): index of the candidate with the highest total reward."""
    index = {m: i for i, m in enumerate(stream.models)}
    sums: dict[tuple[str, int], list[float]] = defaultdict(lambda: [0.0] * len(stream.models))
    allowed: dict[tuple[str, int], set[int]] = defaultdict(set)
    for t, request in enumerate(stream.requests):
        group = _group(stream, t)
        row = sums[group]
        for m, value in enumerate(stream.rewards[t]):
            row[m] += value
        allowed[group].update(index[c] for c in request.candidates)
    return {g: _argmax(sums[g], allowed[g]) for g in sums}


def _argmax(row: Sequence[float], allowed: set[int]) -> int:
    return max(sorted(allowed), key=row.__getitem__)


def recoveries(stream: Stream, picks: Sequence[int], best: dict[tuple[str, int], int], *,
               min_requests: int) -> tuple[int | None, ...]:
    """Per phase boundary: the worst recovery over agents (see the module docstring)."""
    out: list[int | None] = []
    for start in stream.boundaries:
        phase = stream.phases[start]
        per_agent: dict[str, list[int]] = defaultdict(list)
        for t in range(start, len(picks)):
            if stream.phases[t] != phase:
                break
            per_agent[stream.requests[t].agent].append(picks[t])
        measured = [agent for agent, chosen in per_agent.items() if len(chosen) >= min_requests]
        if not measured and per_agent:
            busiest = max(per_agent, key=lambda agent: len(per_agent[agent]))
            measured = [busiest] if len(per_agent[busiest]) >= RECOVERY_WINDOW else []
        times = [recovery_time(per_agent[agent], best[agent, phase]) for agent in measured]
        out.append(None if None in times or not times else max(t for t in times if t is not None))
    return tuple(out)


def recovery_time(chosen: Sequence[int], target: int) -> int | None:
    """Requests until the last RECOVERY_WINDOW choices hold >= 80% ``target`` (None: never)."""
    hits = 0
    need = RECOVERY_SHARE * RECOVERY_WINDOW
    for i, model in enumerate(chosen):
        hits += model == target
        if i >= RECOVERY_WINDOW:
            hits -= chosen[i - RECOVERY_WINDOW] == target
        if i + 1 >= RECOVERY_WINDOW and hits >= need:
            return i + 1
    return None


def _curve(fixed: Sequence[float], got: Sequence[float], points: int) -> tuple[float, ...]:
    total, curve = 0.0, []
    marks = {max(1, len(got) * p // points) for p in range(1, points + 1)}
    for t, (f, g) in enumerate(zip(fixed, got, strict=True), start=1):
        total += f - g
        if t in marks:
            curve.append(total)
    return tuple(curve)
