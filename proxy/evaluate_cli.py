"""``model-manager evaluate``: replay an outcome table through a policy (wired below)."""

from __future__ import annotations

import argparse


def add_evaluate_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the subcommand (filled in with the offline evaluator)."""
