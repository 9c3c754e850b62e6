"""The routing scenario suite: every scenario replayed through several policy variants.

Deterministic from seeds: a scenario's stream depends on (scenario, seed) only, and the
policy's random draws on the seed, so two runs print the same table. Each variant (a
policy name and options) sees the same streams. Figures are means over seeds; recovery
is the worst over seeds (None, printed "never", when any seed does not recover).
Real tables are read from ``data_dir`` (RouterBench's ``split``, RouteLLM whole) and
skipped when absent; ``quick`` keeps the synthetic scenarios only.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policies.base import Policy
from policies.evidence_tables import EvidenceTables
from policies.registry import build_policy
from policies.replay.data import load_table
from policies.replay.scenarios import Stream, Synthetic, synthetic_stream, table_stream
from policies.replay.suite_metrics import RunFigures, figures

ROUTERBENCH = "routerbench_subset.csv"
ROUTELLM = "routellm_gpt4_mixtral.csv"
QUICK_STEPS = 2000

Builder = Callable[[int, int], Stream]
"""(steps, seed) -> the scenario's stream."""


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named workload; ``kind`` is "table", "synthetic" or "drift"."""

    name: str
    kind: str
    build: Builder


@dataclass(frozen=True, slots=True)
class Variant:
    """A policy under test: registry name and constructor options."""

    label: str
    policy: str
    options: Mapping[str, float] = field(default_factory=dict)

    def make(self) -> Policy:
        return build_policy(self.policy, **self.options)


PLAIN = Variant("plain", "thompson-plain")
PREVIOUS = Variant("previous", "thompson", {
    "exploration_rate": 0.0, "pool_strength": 4.0, "context_strength": 2.0,
    "evidence_scale": 3.0, "min_tries": 5.0, "tries_budget": 15.0,
    "context_strength_max": 30.0, "pool_strength_max": 300.0, "choice_discount": 0.003,
    "change_memory": 50.0, "change_z": 2.5, "pool_least": 20.0, "scale_models": 11.0,
    "observed_variance": 1.0, "probe_after": 100.0, "probes": 2.0, "probe_uses": 3.0,
    "change_keep": 10.0, "scale_power": 1.0, "nested_pool": 0.0, "voided_pool": 0.0,
})
"""Routing7's defaults, pinned: before an agent read a pool voided by a re-try round (routing8)."""
NEW = Variant("new", "thompson")
"""Today's defaults."""
DEFAULT_VARIANTS = (PLAIN, PREVIOUS, NEW)

SYNTHETIC: tuple[tuple[str, Synthetic], ...] = (
    ("k2-binary-1a", Synthetic(2, binary=True)),
    ("k2-cont-50a-disagree", Synthetic(2, agents=50, agree=False)),
    ("k11-cont-1a-L20", Synthetic(11, cost_weight=20.0)),
    ("k11-binary-5a-disagree", Synthetic(11, agents=5, binary=True, agree=False)),
    ("k30-cont-5a-agree", Synthetic(30, agents=5)),
    ("k30-cont-50a-disagree-L20", Synthetic(30, agents=50, agree=False, cost_weight=20.0)),
    ("k60-cont-1a", Synthetic(60)),
    ("k60-binary-50a-agree", Synthetic(60, agents=50, binary=True)),
    ("k60-cont-5a-disagree-L20", Synthetic(60, agents=5, agree=False, cost_weight=20.0)),
)
DRIFT: tuple[tuple[str, Synthetic], ...] = tuple(
    (f"drift-{event}", Synthetic(11, agents=5, near_tie=False, event=event,
                                 cost_weight=20.0 if event == "price" else 0.0))
    for event in ("drop", "price", "new", "outage")
)


@dataclass(frozen=True, slots=True)
class SuiteOptions:
    """What to run; ``only`` keeps scenarios whose name contains one of its strings."""

    steps: int = 10_000
    seeds: int = 3
    seed_base: int = 0
    quick: bool = False
    data_dir: Path | None = None
    split: str = "test"
    half_life_steps: float | None = None
    variants: tuple[Variant, ...] = DEFAULT_VARIANTS
    only: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Raise ValueError for steps < 10 or seeds < 1, or no variant."""
        if self.steps < 10 or self.seeds < 1 or not self.variants:
            raise ValueError("the suite needs steps >= 10, seeds >= 1 and one variant")


@dataclass(frozen=True, slots=True)
class Cell:
    """One scenario x variant, over every seed."""

    scenario: str
    kind: str
    variant: str
    runs: tuple[RunFigures, ...]

    @property
    def share(self) -> float:
        return sum(r.share for r in self.runs) / len(self.runs)

    @property
    def gap_closed(self) -> float:
        return sum(r.gap_closed for r in self.runs) / len(self.runs)

    @property
    def recovery(self) -> tuple[int | None, ...]:
        """Per phase boundary: the worst over seeds (None if any seed never recovers)."""
        per_seed = list(zip(*(r.recovery for r in self.runs), strict=True))
        return tuple(None if None in times else max(t for t in times if t is not None)
                     for times in per_seed)

    @property
    def regret(self) -> tuple[float, ...]:
        return tuple(sum(c) / len(c) for c in zip(*(r.regret for r in self.runs), strict=True))


@dataclass(frozen=True, slots=True)
class SuiteReport:
    """Every cell, scenario-major in suite order, and the options it ran with."""

    options: SuiteOptions
    cells: tuple[Cell, ...]
    elapsed_s: float

    def cell(self, scenario: str, variant: str) -> Cell:
        """The cell of that scenario and variant label (KeyError when absent)."""
        for found in self.cells:
            if found.scenario == scenario and found.variant == variant:
                return found
        raise KeyError((scenario, variant))

    @property
    def scenarios(self) -> list[str]:
        return list(dict.fromkeys(c.scenario for c in self.cells))


def scenarios(options: SuiteOptions) -> list[Scenario]:
    """The suite's scenarios for ``options`` (real tables only when found, never when quick)."""
    found = [] if options.quick else _table_scenarios(options.data_dir, options.split)
    found += [_synthetic(name, spec, "synthetic") for name, spec in SYNTHETIC]
    found += [_synthetic(name, spec, "drift") for name, spec in DRIFT]
    if options.only:
        found = [s for s in found if any(part in s.name for part in options.only)]
    return found


def _synthetic(name: str, spec: Synthetic, kind: str) -> Scenario:
    return Scenario(name, kind, lambda steps, seed: synthetic_stream(spec, steps, seed, name))


def _table_scenarios(data_dir: Path | None, split: str) -> list[Scenario]:
    if data_dir is None:
        return []
    found = []
    bench = data_dir / ROUTERBENCH
    if bench.exists():
        for column in ("task", None):
            table = load_table(bench, agent_column=column, split=split)
            for weight in (0.0, 20.0, 100.0):
                name = f"routerbench-{column or 'none'}-L{weight:g}"
                found.append(Scenario(name, "table", _table_builder(table, weight)))
    routellm = data_dir / ROUTELLM
    if routellm.exists():
        table = load_table(routellm, agent_column="task")
        found.append(Scenario("routellm-task-L0", "table", _table_builder(table, 0.0)))
    return found


def _table_builder(table: Any, weight: float) -> Builder:
    return lambda steps, seed: table_stream(table, weight, steps, seed)


def run_suite(options: SuiteOptions, *, progress: Callable[[str], None] | None = None) -> SuiteReport:
    """Replay every scenario x seed x variant; figures as in suite_metrics."""
    started = time.perf_counter()
    steps = QUICK_STEPS if options.quick else options.steps
    cells = []
    for scenario in scenarios(options):
        runs: dict[str, list[RunFigures]] = {v.label: [] for v in options.variants}
        for seed in range(options.seed_base, options.seed_base + options.seeds):
            stream = scenario.build(steps, seed)
            for variant in options.variants:
                picks = replay(stream, variant.make(), seed, options.half_life_steps)
                runs[variant.label].append(figures(stream, picks))
        cells += [Cell(scenario.name, scenario.kind, label, tuple(r)) for label, r in runs.items()]
        if progress is not None:
            progress(scenario.name)
    return SuiteReport(options, tuple(cells), time.perf_counter() - started)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def replay(stream: Stream, policy: Policy, seed: int, half_life_steps: float | None) -> list[int]:
    """The model index ``policy`` picks at each step, learning through the in-memory evidence tables
    (virtual clock: one second per request, so the half-life counts requests)."""
    clock = _Clock()
    store = EvidenceTables(half_life_s=half_life_steps, clock=clock)
    rng = random.Random(f"{seed}:policy")
    index = {m: i for i, m in enumerate(stream.models)}
    picks = []
    for step, (request, rewards) in enumerate(zip(stream.requests, stream.rewards, strict=True)):
        clock.now = float(step + 1)
        snapshot = store.load_now(policy.tables(request), request.candidates)
        choice = policy.rank(request, snapshot, rng).choice
        picks.append(index[choice])
        store.apply_now(policy.deltas(request, choice, rewards[picks[-1]], snapshot))
    return picks


def worst(report: SuiteReport, variant: str) -> tuple[float, float]:
    """(lowest share of best fixed, largest shortfall vs plain in points) of ``variant``."""
    shares = [c.share for c in report.cells if c.variant == variant]
    behind = [
        100 * (report.cell(c.scenario, PLAIN.label).share - c.share)
        for c in report.cells
        if c.variant == variant and any(v.label == PLAIN.label for v in report.options.variants)
    ]
    return min(shares), max(behind, default=0.0)


def as_dict(report: SuiteReport) -> dict[str, Any]:
    """The report, JSON-ready."""
    o = report.options
    return {
        "options": {"steps": QUICK_STEPS if o.quick else o.steps, "seeds": o.seeds,
                    "seed_base": o.seed_base, "quick": o.quick, "split": o.split,
                    "half_life_steps": o.half_life_steps,
                    "variants": {v.label: {"policy": v.policy, "options": dict(v.options)}
                                 for v in o.variants}},
        "cells": [
            {"scenario": c.scenario, "kind": c.kind, "variant": c.variant,
             "share_of_best_fixed_per_agent": c.share, "oracle_gap_closed_vs_random": c.gap_closed,
             "recovery_requests": list(c.recovery),
             "per_seed_share": [r.share for r in c.runs], "regret_curve": list(c.regret)}
            for c in report.cells
        ],
        "elapsed_s": report.elapsed_s,
    }


def format_suite(report: SuiteReport) -> str:
    """One row per scenario: share / gap closed / recovery of every variant."""
    labels = [v.label for v in report.options.variants]
    head = f"{'scenario':28}" + "".join(f"{label + ' share':>15}{'gap':>8}{'recov':>12}"
                                        for label in labels)
    lines = [head]
    for name in report.scenarios:
        row = f"{name:28}"
        for label in labels:
            c = report.cell(name, label)
            row += f"{c.share:15.2%}{c.gap_closed:8.1%}{_recovery(c.recovery):>12}"
        lines.append(row)
    for label in labels:
        low, behind = worst(report, label)
        lines.append(f"{label}: worst share {low:.2%}, at most {behind:.2f} points below plain")
    lines.append(f"({report.elapsed_s:.0f} s)")
    return "\n".join(lines)


def _recovery(times: Sequence[int | None]) -> str:
    return "/".join("never" if t is None else str(t) for t in times) if times else "-"
