"""``model-manager warm-start``: teach the configured store logged outcomes before serving.

Reads a CSV in the outcome-table schema (``prompt_id``, ``prompt``, ``model``, ``quality``,
optional ``cost_usd`` and ``latency_s``; any models per prompt: a log of past traffic or
an offline evaluation). Each row is scored with its agent's reward weights from config
(latency left out when not logged, cost neutral when not logged) and taught through the
router's policy, as the proxy would have learnt it live, capped at ``--strength``
pseudo-observations per model in each (agent, prompt context) cell (policies.warm_start).
The evidence goes to Redis or to the embedded SQLite database (a running proxy on the same
database picks it up within a second), and decays with ``router.half_life_s`` like live
evidence.

Rows naming a model that is not in config, or an invalid agent name, are skipped and
counted. Evidence is added, so each import is recorded (proxy.cli.warm_ledger) and the same
file with the same options is refused a second time unless ``--force``; ``--dry-run``
shows what would be written.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from redis.exceptions import RedisError

from policies.base import Delta
from policies.replay.data import ReplayDataError
from policies.replay.logs import LoggedRow, load_logged
from policies.reward import logged_reward
from policies.warm_start import LoggedOutcome, warm_deltas
from proxy.cli.loading import load as load_config
from proxy.cli.warm_ledger import FileLedger, Ledger, RedisLedger, fingerprint
from proxy.config.settings import Config
from proxy.pipeline.router import Router
from proxy.runtime.state import State, open_state
from proxy.wire.names import is_valid_name

CHUNK = 1_000
"""Deltas per write: well under the Redis store's buffer limit."""


@dataclass(slots=True)
class Scored:
    """The rows kept, per agent, and why the others were skipped."""

    outcomes: dict[str, list[LoggedOutcome]] = field(default_factory=lambda: defaultdict(list))
    unknown_model: int = 0
    bad_agent: int = 0
    unscored: int = 0


def add_warm_start_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``warm-start`` and its options."""
    parser = sub.add_parser("warm-start", help="teach the router logged outcomes (CSV)")
    parser.add_argument("--config", default="config.yaml", help="config file (default config.yaml)")
    parser.add_argument("--data", type=Path, required=True, help="CSV of logged outcomes")
    parser.add_argument("--agent-column", default="task", help="column naming the agent, or 'none'")
    parser.add_argument("--split", default=None, help="only rows of this split")
    parser.add_argument(
        "--strength", type=float, default=100.0,
        help="at most this many pseudo-observations per model and (agent, prompt context) (default 100)",
    )
    parser.add_argument("--dry-run", action="store_true", help="report, write nothing")
    parser.add_argument("--force", action="store_true", help="import even if this log was imported before")
    parser.set_defaults(run=run_warm_start)


def run_warm_start(args: argparse.Namespace) -> int:
    """Exit 0 when written (or dry run), 1 when the store could not take it, 2 for bad input."""
    config = load_config(args.config)
    agent_column = None if args.agent_column.lower() == "none" else args.agent_column
    try:
        rows = load_logged(args.data, agent_column=agent_column, split=args.split)
        deltas, scored = plan(config, rows, strength=args.strength)
        key = fingerprint(args.data, agent_column=agent_column, split=args.split, strength=args.strength)
    except (ReplayDataError, ValueError, OSError) as exc:
        print(f"warm-start: {exc}", file=sys.stderr)
        return 2
    print(_summary(scored, deltas))
    if args.dry_run or not deltas:
        return 0
    ledger_home = Path(config.server.state_file)
    return asyncio.run(_write(config, deltas, Import(key, args.data, args.force, ledger_home)))


def plan(config: Config, rows: Sequence[LoggedRow], *, strength: float) -> tuple[list[Delta], Scored]:
    """The deltas for ``rows`` under ``config``'s policy and weights, and the tally."""
    router = Router(config)
    scored = score(config, router, rows)
    deltas: list[Delta] = []
    for agent, outcomes in scored.outcomes.items():
        deltas.extend(warm_deltas(router.policy_for(agent), outcomes, strength=strength))
    return deltas, scored


def score(config: Config, router: Router, rows: Sequence[LoggedRow]) -> Scored:
    """Each usable row as a rewarded outcome under its agent; the rest counted."""
    scored = Scored()
    for row in rows:
        if row.model not in config.arms:
            scored.unknown_model += 1
        elif not is_valid_name(row.agent):
            scored.bad_agent += 1
        else:
            weights, _ = router.weights_for(row.agent)
            value = logged_reward(row.quality, row.latency_s, row.cost_usd, weights)
            if value is None:
                scored.unscored += 1
            else:
                scored.outcomes[row.agent].append(LoggedOutcome(row.agent, row.prompt, row.model, value))
    return scored


def _summary(scored: Scored, deltas: Sequence[Delta]) -> str:
    used = sum(len(v) for v in scored.outcomes.values())
    agents = ", ".join(sorted(scored.outcomes)) or "none"
    return (
        f"{used} rows for {len(scored.outcomes)} agent(s) ({agents}) -> {len(deltas)} cells; "
        f"skipped: {scored.unknown_model} unknown model, {scored.bad_agent} bad agent name, "
        f"{scored.unscored} nothing scored (latency-only weights, no latency logged)"
    )


@dataclass(frozen=True, slots=True)
class Import:
    """This import's fingerprint, its file, and whether a repeat is wanted."""

    key: str
    source: Path
    force: bool
    ledger_home: Path
    """The embedded ledger sits next to this path (``server.state_file``)."""


async def _write(config: Config, deltas: Sequence[Delta], this: Import) -> int:
    state = open_state(config, time.time)
    try:
        code = await _write_once(state, deltas, this)
    finally:
        await state.close()
    unwritten = state.posteriors.counters().get("pending", 0)
    if code and state.redis is not None:
        print(f"warm-start: {unwritten} cell(s) left unwritten; check `model-manager stats` "
              "before importing again (written cells would count twice)", file=sys.stderr)
    return code


async def _write_once(state: State, deltas: Sequence[Delta], this: Import) -> int:
    """Write unless this import was recorded before (and not forced); record it after."""
    ledger = _ledger(state, this.ledger_home)
    try:
        earlier = None if ledger is None or this.force else await ledger.seen(this.key)
    except (RedisError, OSError) as exc:
        print(f"warm-start: Redis does not answer ({exc}); nothing written", file=sys.stderr)
        return 1
    if earlier is not None:
        print(f"warm-start: this log was already imported with these options ({earlier}); "
              "nothing written (--force imports it again)", file=sys.stderr)
        return 1
    code = await _write_to_store(state, deltas)
    if code == 0 and ledger is not None:
        try:
            await ledger.record(this.key, this.source)
        except (RedisError, OSError) as exc:
            print(f"warm-start: written, but the import could not be recorded ({exc}): "
                  "a repeat would not be refused", file=sys.stderr)
    return code


def _ledger(state: State, home: Path) -> Ledger:
    if state.redis is not None:
        return RedisLedger(state.redis.client, state.redis.prefix)
    return FileLedger(home)


async def _write_to_store(state: State, deltas: Sequence[Delta]) -> int:
    where = "Redis" if state.redis is not None else str(state.state_file)
    store = state.posteriors
    if not await store.ping():
        print(f"warm-start: {where} does not answer; nothing written", file=sys.stderr)
        return 1
    for start in range(0, len(deltas), CHUNK):
        await store.apply(deltas[start:start + CHUNK])
        if not await store.flush():
            print(f"warm-start: {where} failed after {start} of {len(deltas)} cells were written",
                  file=sys.stderr)
            return 1
    print(f"written to {where} ({len(deltas)} cells)")
    return 0
