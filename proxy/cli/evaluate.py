"""``model-manager evaluate``: replay an outcome table through a policy offline."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from policies.registry import POLICY_NAMES
from policies.replay.data import ReplayDataError
from policies.replay.evaluate import EvaluationOptions, Progress, run_evaluation
from policies.replay.report import EvaluationReport, format_table, plot_learning_curves
from policies.replay.warm import WarmStart
from proxy.cli.suite import run_suite_command

BAR_WIDTH = 30


def add_evaluate_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``evaluate`` and its options."""
    parser = sub.add_parser("evaluate", help="replay a prompt x model outcome table through a policy")
    parser.add_argument("--data", type=Path, default=None, help="CSV in the outcome-table schema")
    parser.add_argument("--suite", action="store_true", help="run the routing scenario suite instead")
    parser.add_argument("--quick", action="store_true", help="suite: synthetic scenarios, 2,000 requests")
    parser.add_argument("--data-dir", type=Path, default=None, help="suite: folder of the real tables")
    parser.add_argument("--only", action="append", default=[], help="suite: scenarios naming this")
    parser.add_argument("--agent-column", default="task", help="column naming the agent, or 'none'")
    parser.add_argument("--cost-weight", type=float, default=0.0, help="L in reward = quality - L*cost")
    parser.add_argument("--steps", type=int, default=10_000, help="requests replayed per seed")
    parser.add_argument("--seeds", type=int, default=5, help="independent replays averaged")
    parser.add_argument("--policy", default="thompson", choices=POLICY_NAMES)
    parser.add_argument("--split", default=None, help="only rows of this split (e.g. test)")
    parser.add_argument("--seed-base", type=int, default=0)
    parser.add_argument("--half-life-steps", type=float, default=None, help="evidence half-life")
    parser.add_argument(
        "--policy-option",
        action="append",
        default=[],
        metavar="NAME=NUMBER",
        help="policy constructor option, e.g. exploration_rate=0.02 (what the proxy's config sets)",
    )
    parser.add_argument(
        "--warm-start", type=Path, default=None, metavar="FILE.csv",
        help="teach the policy these logged outcomes first (same schema; any models per prompt)",
    )
    parser.add_argument("--warm-split", default=None, help="only warm-start rows of this split")
    parser.add_argument(
        "--warm-strength", type=float, default=100.0,
        help="at most this many pseudo-observations per model and prompt context (per agent)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--plot", type=Path, default=None, help="save the learning curve as a PNG")
    parser.set_defaults(run=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    """Exit code 0 with a report, 2 for bad options or a bad data file."""
    try:
        if args.suite:
            return run_suite_command(args, policy_options(args.policy_option))
        if args.data is None:
            raise ValueError("--data FILE.csv is required (or --suite)")
        options = EvaluationOptions(
            data=args.data,
            agent_column=None if args.agent_column.lower() == "none" else args.agent_column,
            cost_weight=args.cost_weight,
            steps=args.steps,
            seeds=args.seeds,
            policy=args.policy,
            split=args.split,
            seed_base=args.seed_base,
            half_life_steps=args.half_life_steps,
            policy_options=policy_options(args.policy_option),
            warm_start=_warm_start(args),
        )
        report = run_evaluation(options, progress=_progress_bar(args.json))
    except (ReplayDataError, ValueError) as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 2
    _print(report, as_json=args.json)
    return _plot(report, args.plot)


def _warm_start(args: argparse.Namespace) -> WarmStart | None:
    if args.warm_start is None:
        if args.warm_split is not None:
            raise ValueError("--warm-split needs --warm-start FILE.csv")
        return None
    return WarmStart(args.warm_start, split=args.warm_split, strength=args.warm_strength)


def policy_options(items: list[str]) -> dict[str, float]:
    """``NAME=NUMBER`` pairs as a mapping; ValueError naming a malformed one."""
    options = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            options[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise ValueError(f"--policy-option {item!r}: expected NAME=NUMBER")
    return options


def _print(report: EvaluationReport, *, as_json: bool) -> None:
    print(report.as_json() if as_json else format_table(report))


def _plot(report: EvaluationReport, path: Path | None) -> int:
    if path is None:
        return 0
    try:
        plot_learning_curves([report], path)
    except RuntimeError as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 2
    print(f"learning curve saved to {path}", file=sys.stderr)
    return 0


def _progress_bar(quiet_stdout: bool) -> Progress:
    """Progress on stderr (stdout stays clean for --json): a redrawn bar on a terminal, else
    one plain line per quarter (no carriage returns in logs or pipes)."""
    started = time.monotonic()
    terminal = sys.stderr.isatty()
    quarters_shown = [0]

    def show(done: int, total: int) -> None:
        elapsed = time.monotonic() - started
        if not terminal:
            quarter = 4 * done // max(total, 1)
            if quarter > quarters_shown[0]:
                quarters_shown[0] = quarter
                print(f"{done}/{total} requests {elapsed:.1f}s", file=sys.stderr)
            return
        filled = BAR_WIDTH * done // max(total, 1)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        print(f"\r[{bar}] {done}/{total} requests {elapsed:5.1f}s", end="", file=sys.stderr)
        if done >= total:
            print(file=sys.stderr)

    return show
