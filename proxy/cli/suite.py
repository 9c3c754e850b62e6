"""``model-manager evaluate --suite``: the routing scenario suite (policies/replay/suite.py)."""

from __future__ import annotations

import argparse
import json
import sys

from policies.replay.suite import DEFAULT_VARIANTS, SuiteOptions, Variant, as_dict, format_suite, run_suite
from policies.replay.suite_plot import plot_regret


def run_suite_command(args: argparse.Namespace, policy_options: dict[str, float]) -> int:
    """Exit code 0 with the suite's table (or JSON), 2 for bad options or no matplotlib."""
    variants: tuple[Variant, ...] = DEFAULT_VARIANTS
    if policy_options:
        variants = (*variants, Variant("candidate", args.policy, policy_options))
    options = SuiteOptions(
        steps=args.steps, seeds=args.seeds if args.seeds != 5 else 3, seed_base=args.seed_base,
        quick=args.quick, data_dir=args.data_dir, split=args.split or "test",
        half_life_steps=args.half_life_steps, variants=variants, only=tuple(args.only),
    )
    report = run_suite(options, progress=lambda name: print(f"  {name}", file=sys.stderr))
    print(json.dumps(as_dict(report), indent=2) if args.json else format_suite(report))
    if args.plot is not None:
        try:
            plot_regret(report, args.plot)
        except RuntimeError as exc:
            print(f"evaluate: {exc}", file=sys.stderr)
            return 2
        print(f"regret curves saved to {args.plot}", file=sys.stderr)
    return 0
