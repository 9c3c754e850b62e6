"""Chaos under load: one fault at a time against a real proxy on a real Redis, figures printed.

Each scenario sends ``--rate`` requests/s for ``--seconds`` from ``--agents`` agents (each in
its own workflow; streamed where the fault is a stream's) while one fault happens, lets the
proxy settle (nothing pending in ``/ready``), and prints: requests, client failures, lost
updates per kind (posterior evidence, stats calls, workflow requests, decision records; see
bench/harness/ledger.py for how each is counted), whether any error shown to a client embedded
an HTML page, and the write counters that moved. Upstream faults hit model ``primary``; model
``backup`` is healthy, so a fallback exists for every request: a stream cut after its first
chunk is continued by ``backup`` in the same stream (router.resume_streams, on by default;
the table's "resumed" column counts them).
Faults on Redis: killed (SIGKILL) and restarted; frozen (SIGSTOP, SIGCONT); slowed (relay
latency); out of memory (maxmemory 1 byte, noeviction). After each upstream fault, pinned
probes to the faulty model show the error a client gets when no fallback exists.

Targets: no client failure where a fallback exists; no error with HTML; 0 lost updates.
``--strict`` exits 1 when any target is missed. Loopback only; every loop is bounded.

Usage: python bench/chaos.py [--rate 300] [--seconds 8] [--agents 4] [--only kill,5xx] [--strict]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.harness import ledger
from bench.harness.fixed_rate import Result, Sender, run_load, send_all
from bench.harness.world import World

PROBES = 4


@dataclass(frozen=True)
class Timing:
    """Fault timing within a scenario: starts at ``onset`` of the window, lasts ``outage_s``."""

    seconds: float = 8.0
    outage_s: float = 3.0
    onset: float = 0.25


Fault = Callable[[World, Timing], Awaitable[None]]


async def no_fault(world: World, timing: Timing) -> None:
    return None


async def _at_onset(timing: Timing) -> None:
    await asyncio.sleep(timing.seconds * timing.onset)


async def redis_killed(world: World, timing: Timing) -> None:
    await _at_onset(timing)
    world.redis.stop(hard=True)
    await asyncio.sleep(timing.outage_s)
    await asyncio.to_thread(world.redis.start)


async def redis_frozen(world: World, timing: Timing) -> None:
    await _at_onset(timing)
    assert world.redis.process is not None
    pid = world.redis.process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        await asyncio.sleep(timing.outage_s)
    finally:
        os.kill(pid, signal.SIGCONT)


def redis_slowed(delay_s: float) -> Fault:
    async def fault(world: World, timing: Timing) -> None:
        await _at_onset(timing)
        world.relay.delay_s = delay_s
        try:
            await asyncio.sleep(timing.outage_s)
        finally:
            world.relay.delay_s = 0.0

    return fault


async def redis_out_of_memory(world: World, timing: Timing) -> None:
    await _at_onset(timing)
    client = world.redis_client
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", "1")
    try:
        await asyncio.sleep(timing.outage_s)
    finally:
        client.config_set("maxmemory", "0")


@dataclass(frozen=True)
class Scenario:
    """A fault, the requests that meet it, and whether a fallback exists for them."""

    name: str
    fault: Fault = no_fault
    profile: dict[str, Any] = field(default_factory=dict)
    group: str = "pair"
    stream: bool = False
    fallback: bool = True
    faulty: str = "primary"

    def senders(self, agents: int, *, pinned: bool = False) -> list[Sender]:
        model = self.faulty if pinned else self.group
        name = self.name
        return [Sender(f"{name}-a{i}", f"wf-{name}-{i}", model, self.stream, pinned) for i in range(agents)]


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("baseline"),
    Scenario("redis-kill", redis_killed),
    Scenario("redis-freeze", redis_frozen),
    Scenario("redis-slow", redis_slowed(0.1)),
    Scenario("redis-oom", redis_out_of_memory),
    Scenario("up-timeout", profile={"hang": True}),
    Scenario("up-refused", group="deadpair", faulty="dead"),
    Scenario("up-5xx", profile={"fail_status": 503}),
    Scenario("up-5xx-html", profile={"fail_status": 502, "html_error": True}),
    Scenario("up-429", profile={"fail_status": 429, "retry_after_s": 1}),
    Scenario("up-garbage-200", profile={"malformed_json": True}),
    Scenario("up-cut-json", profile={"cut_body": True}),
    Scenario("up-cut-stream", profile={"cut_stream_after": 2}, stream=True),
    Scenario("up-stall-stream", profile={"ttft_ms": 2000}, stream=True),
    Scenario("up-slow-drip", profile={"chunks": 20, "chunk_interval_ms": 50}, stream=True),
)


@dataclass
class Row:
    """One scenario's figures."""

    name: str
    fallback: bool
    requests: int
    rate: float
    failures: int
    resumed: int
    lost: dict[str, float]
    html: int
    probe_failures: int
    probe_html: int
    faulty_hits: int
    counters: dict[str, int]
    settled: bool
    sample_errors: list[str]

    def misses(self) -> list[str]:
        """The targets this row misses, named."""
        found = [f"{kind} lost {self.lost[kind]:g}" for kind in ledger.KINDS if self.lost[kind] != 0]
        if self.fallback and self.failures:
            found.append(f"{self.failures} client failures with a fallback")
        if self.html or self.probe_html:
            found.append("HTML in an error message")
        if not self.settled:
            found.append("proxy did not settle")
        return found


async def run_scenario(world: World, scenario: Scenario, timing: Timing, rate: float, agents: int) -> Row:
    upstream = world.upstream
    upstream.reset()
    if scenario.profile:
        upstream.set_profile(scenario.faulty, **scenario.profile)
    ledger.wait_settled(world.url)
    mass_before = ledger.posterior_mass(world.redis_client)
    counters_before = ledger.write_counters(world.url)
    load, _ = await asyncio.gather(
        run_load(world.url, scenario.senders(agents), rate, timing.seconds), scenario.fault(world, timing)
    )
    probes: list[Result] = []
    if scenario.profile or scenario.group != "pair":
        probes = await send_all(world.url, scenario.senders(agents, pinned=True)[:1] * PROBES)
    faulty_hits = upstream.stats().get(scenario.faulty, {}).get("requests", 0)
    upstream.reset()
    calm = ledger.wait_settled(world.url)
    return _row(
        world=world,
        scenario=scenario,
        results=load.results,
        rate=load.rate,
        probes=probes,
        mass_before=mass_before,
        counters_before=counters_before,
        faulty_hits=faulty_hits,
        calm=calm,
    )


def _row(
    *,
    world: World,
    scenario: Scenario,
    results: list[Result],
    rate: float,
    probes: list[Result],
    mass_before: float,
    counters_before: dict[str, dict[str, int]],
    faulty_hits: int,
    calm: bool,
) -> Row:
    everything = results + probes
    book = ledger.Ledger(
        ledger.expected_figures(everything),
        ledger.seen_figures(world.url, world.redis_client, everything, mass_before),
    )
    failed = [r for r in results if r.failed]
    errors = sorted({r.error[:160] for r in failed + probes if r.error})[:3]
    return Row(
        name=scenario.name,
        fallback=scenario.fallback,
        requests=len(results),
        rate=rate,
        failures=len(failed),
        resumed=sum(r.resumed for r in results),
        lost={kind: book.lost(kind) for kind in ledger.KINDS},
        html=sum(ledger.has_html(r.error) for r in results),
        probe_failures=sum(r.failed for r in probes),
        probe_html=sum(ledger.has_html(r.error) for r in probes),
        faulty_hits=faulty_hits,
        counters=dict(ledger.counter_growth(counters_before, ledger.write_counters(world.url))),
        settled=calm,
        sample_errors=errors,
    )


def format_table(rows: Sequence[Row]) -> str:
    head = (
        "| scenario | fallback | requests | req/s | client failures | resumed | lost posterior "
        "| lost stats | lost workflow | lost decisions | HTML in errors | faulty model hit | probes failed |"
    )
    lines = [head, "|" + "---|" * 13]
    for r in rows:
        lost = " | ".join(f"{r.lost[k] + 0.0:g}" for k in ledger.KINDS)  # + 0.0: no "-0"
        html = r.html + r.probe_html
        lines.append(
            f"| {r.name} | {'yes' if r.fallback else 'no'} | {r.requests} | {r.rate:.0f} | {r.failures} "
            f"| {r.resumed} | {lost} | {html} | {r.faulty_hits} | {r.probe_failures} |"
        )
    return "\n".join(lines)


def format_details(rows: Sequence[Row]) -> str:
    lines = []
    for r in rows:
        lines.append(f"{r.name}: counters {r.counters or '{}'}; settled {r.settled}")
        lines.extend(f"    error seen: {e}" for e in r.sample_errors)
    return "\n".join(lines)


async def run_all(
    world: World, scenarios: Sequence[Scenario], timing: Timing, rate: float, agents: int
) -> list[Row]:
    rows = []
    for scenario in scenarios:
        started = time.monotonic()
        rows.append(await run_scenario(world, scenario, timing, rate, agents))
        print(f"  {scenario.name}: done in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return rows


def chosen(only: str | None) -> list[Scenario]:
    if not only:
        return list(SCENARIOS)
    names = only.split(",")
    return [s for s in SCENARIOS if any(n in s.name for n in names)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=300.0, help="requests per second (default 300)")
    parser.add_argument("--seconds", type=float, default=8.0, help="load per scenario (default 8)")
    parser.add_argument("--outage", type=float, default=3.0, help="Redis fault duration, s (default 3)")
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--only", help="comma-separated parts of scenario names")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    timing = Timing(args.seconds, args.outage)
    with World() as world:
        print(f"logs (proxy, simulator, Redis) in {world.work}", file=sys.stderr)
        rows = asyncio.run(run_all(world, chosen(args.only), timing, args.rate, args.agents))
    print(format_table(rows))
    print()
    print(format_details(rows))
    misses = {r.name: r.misses() for r in rows if r.misses()}
    for name, missed in misses.items():
        print(f"MISSED {name}: {'; '.join(missed)}")
    return 1 if args.strict and misses else 0


if __name__ == "__main__":
    sys.exit(main())
