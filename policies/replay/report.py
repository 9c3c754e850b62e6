"""Evaluation results: per-seed figures, averages, a text table, JSON and a plot.

Gap closed (both reported, as fractions): the share of the distance from a baseline
to the per-prompt oracle that the policy covers, ``(policy - base) / (oracle - base)``,
with base = the best single fixed model overall (``gap_closed_vs_best_fixed``) and
base = uniform random (``gap_closed_vs_random``). 1 = oracle, 0 = no better than base.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policies.replay.hindsight import Figures, Hindsight

BASELINES = (
    "oracle",
    "best_fixed_per_agent",
    "best_fixed_per_task",
    "best_fixed_overall",
    "random",
    "cheapest",
)


@dataclass(frozen=True, slots=True)
class SeedResult:
    """One seed: the policy's figures, the exact baselines, the learning curve."""

    policy: Figures
    baselines: Hindsight
    curve: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class EvaluationReport:
    """Results over every seed; figures are means over seeds."""

    options_summary: dict[str, Any]
    seeds: tuple[SeedResult, ...]
    elapsed_s: float

    @property
    def policy(self) -> Figures:
        return _mean_figures([s.policy for s in self.seeds])

    def baseline(self, name: str) -> Figures:
        """The mean over seeds of baseline ``name`` (one of BASELINES)."""
        return _mean_figures([getattr(s.baselines, name) for s in self.seeds])

    @property
    def curve(self) -> tuple[float, ...]:
        """Mean reward per block of requests, averaged over seeds."""
        return tuple(sum(c) / len(c) for c in zip(*(s.curve for s in self.seeds), strict=True))

    def gap_closed(self, base: str) -> float:
        """(policy - base) / (oracle - base) in mean reward; NaN when oracle == base."""
        low, high = self.baseline(base).reward, self.baseline("oracle").reward
        return (self.policy.reward - low) / (high - low) if high > low else float("nan")

    @property
    def share_of_best_fixed_per_agent(self) -> float:
        """Policy mean reward / best-fixed-per-agent mean reward."""
        return self.share_of("best_fixed_per_agent")

    def share_of(self, base: str) -> float:
        """Policy mean reward / the mean reward of baseline ``base`` (NaN if that is 0)."""
        best = self.baseline(base).reward
        return self.policy.reward / best if best > 0 else float("nan")

    def as_dict(self) -> dict[str, Any]:
        """Every headline figure, JSON-ready."""
        out: dict[str, Any] = {"options": self.options_summary}
        for name, figures in (("policy", self.policy), *self.baselines()):
            out[f"{name}_mean_reward"] = figures.reward
            out[f"{name}_mean_quality"] = figures.quality
            out[f"{name}_mean_cost_usd"] = figures.cost
        out["policy_reward_per_seed"] = [s.policy.reward for s in self.seeds]
        out["share_of_best_fixed_per_agent"] = self.share_of_best_fixed_per_agent
        out["share_of_best_fixed_per_task"] = self.share_of("best_fixed_per_task")
        out["gap_closed_vs_best_fixed"] = self.gap_closed("best_fixed_overall")
        out["gap_closed_vs_random"] = self.gap_closed("random")
        out.update(self._models())
        out["learning_curve"] = list(self.curve)
        out["elapsed_s"] = self.elapsed_s
        return out

    def as_json(self) -> str:
        """``as_dict()`` as one JSON object (NaN written as null)."""
        return json.dumps(_no_nan(self.as_dict()), indent=2)

    def baselines(self) -> list[tuple[str, Figures]]:
        """(name, mean figures) of every baseline, in BASELINES order."""
        return [(name, self.baseline(name)) for name in BASELINES]

    def _models(self) -> dict[str, Any]:
        first = self.seeds[0].baselines
        agents = first.best_model_per_agent
        return {
            "best_fixed_overall_model": _mode([s.baselines.best_overall_model for s in self.seeds]),
            "best_fixed_model_per_agent": {
                a: _mode([s.baselines.best_model_per_agent.get(a, "") for s in self.seeds])
                for a in agents
            },
            "cheapest_model": first.cheapest_model,
        }


def format_table(report: EvaluationReport) -> str:
    """A human-readable table of the headline figures."""
    o = report.options_summary
    lines = [
        f"policy {o['policy']} on {o['data']} (split {o['split'] or 'all'}, agent column "
        f"{o['agent_column'] or 'none'}, cost weight {o['cost_weight']:g}, {o['steps']} "
        f"requests x {o['seeds']} seeds, {report.elapsed_s:.1f} s)",
        f"{'':24}{'reward':>9}{'quality':>9}{'cost $':>11}",
    ]
    warm = o.get("warm_start")
    if warm:
        lines.insert(1, f"warm start: {warm['rows']} logged rows of {warm['data']} (split "
                        f"{warm['split'] or 'all'}), at most {warm['strength']:g} per model and "
                        "prompt context")
    rows = (("policy", report.policy), *report.baselines())
    lines += [f"{n:24}{f.reward:9.4f}{f.quality:9.4f}{f.cost:11.6f}" for n, f in rows]
    lines.append(
        f"policy / best fixed per agent: {report.share_of_best_fixed_per_agent:.2%}, "
        f"per task: {report.share_of('best_fixed_per_task'):.2%}"
    )
    lines.append(
        f"oracle gap closed: {report.gap_closed('best_fixed_overall'):.2%} vs best fixed overall,"
        f" {report.gap_closed('random'):.2%} vs random"
    )
    lines.append("learning curve: " + " ".join(f"{v:.3f}" for v in report.curve))
    return "\n".join(lines)


def plot_learning_curves(results: Sequence[EvaluationReport], path: Path) -> None:
    """Write a PNG of each report's learning curve; RuntimeError without matplotlib."""
    try:
        import matplotlib as mpl  # noqa: PLC0415 - optional dependency

        mpl.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError as error:
        raise RuntimeError(
            "plotting needs matplotlib: pip install 'model-manager[plot]'"
        ) from error
    figure, axes = plt.subplots(figsize=(8, 5))
    for report in results:
        steps = report.options_summary["steps"]
        xs = [(b + 1) * steps / len(report.curve) for b in range(len(report.curve))]
        axes.plot(xs, report.curve, label=_label(report))
    _reference_lines(axes, results[0] if results else None)
    axes.set_xlabel("requests")
    axes.set_ylabel("mean reward per block")
    axes.legend(fontsize="small")
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _reference_lines(axes: Any, report: EvaluationReport | None) -> None:
    if report is None:
        return
    for name, style in (("oracle", ":"), ("best_fixed_per_agent", "--"), ("random", "-.")):
        axes.axhline(report.baseline(name).reward, linestyle=style, color="grey", label=name)


def _label(report: EvaluationReport) -> str:
    o = report.options_summary
    return f"{o['policy']} (agent {o['agent_column'] or 'none'}, L={o['cost_weight']:g})"


def _mean_figures(items: Sequence[Figures]) -> Figures:
    n = len(items)
    return Figures(*(sum(getattr(f, k) for f in items) / n for k in ("reward", "quality", "cost")))


def _mode(values: Sequence[str]) -> str:
    return Counter(values).most_common(1)[0][0]


def _no_nan(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_nan(v) for v in value]
    return value


__all__ = ["EvaluationReport", "SeedResult", "format_table", "plot_learning_curves"]
