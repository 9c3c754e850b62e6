"""Soak: minutes of fixed-rate load with Redis and the tracking endpoints polled; is anything growing?

A real proxy process on a real redis-server (bench/harness/world.py) gets ``--rate`` requests/s
for ``--minutes`` from 4 agents in 5 workflows each (a third streamed; model ``primary``
fails 5% of its calls so fallbacks run too) while a poller reads ``/v1/stats``,
``/v1/workflows``, a workflow, ``/metrics`` and ``/ready`` every second. Every ``--every``
seconds it samples the proxy's resident memory and open file descriptors (from /proc, the
process and its children), its asyncio task count (``/ready``'s ``asyncio_tasks``) and Redis
``used_memory``, and prints the curves as a table.

Checks, after a warm-up (the first ``--warmup`` share of the samples): resident memory stays
within +-10% of its first post-warm-up sample; file descriptors and tasks are flat: the growth
a least-squares line projects over the window is at most 20% of their mean plus 5. Redis
memory is not expected flat (decision records live ``decision_ttl_s``); its growth per request
is printed. ``--strict`` exits 1 when a check fails.

Usage: python bench/soak.py [--minutes 10] [--rate 200] [--every 10] [--strict]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.harness.fixed_rate import LoadRun, Result, Sender, run_load
from bench.harness.world import World

RSS_BAND = 0.10
FLAT_SHARE = 0.20
FLAT_FLOOR = 5.0
POLL_S = 1.0


@dataclass(frozen=True)
class Sample:
    at_s: float
    rss_mib: float
    fds: int
    tasks: int
    redis_mib: float
    requests: int


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc/<pid>/task/*/children)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            todo.extend(int(child) for child in task.read_text().split())
    return found


def rss_mib(pids: Sequence[int]) -> float:
    total_kib = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total_kib += int(line.split()[1])
    return total_kib / 1024


def open_fds(pids: Sequence[int]) -> int:
    return sum(len(os.listdir(f"/proc/{pid}/fd")) for pid in pids)


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """The Theil-Sen slope of ``ys`` over ``xs``: the median of the slopes between every two
    samples (0 for fewer than two points). Steady growth reads in full, while a burst that
    comes and goes within a few samples (a stall answered by the load opening connections,
    which drain afterwards) moves it little; a least-squares line follows such a burst at the
    window's end."""
    pairs = [
        (ys[j] - ys[i]) / (xs[j] - xs[i])
        for i in range(len(xs))
        for j in range(i + 1, len(xs))
        if xs[j] != xs[i]
    ]
    return statistics.median(pairs) if pairs else 0.0


def projected_growth(xs: Sequence[float], ys: Sequence[float]) -> float:
    """What the fitted line grows by across the window."""
    return slope(xs, ys) * (xs[-1] - xs[0]) if len(xs) > 1 else 0.0


def after_warmup(samples: Sequence[Sample], warmup: float) -> list[Sample]:
    skip = max(1, round(len(samples) * warmup))
    return list(samples[skip:])


def checks(samples: Sequence[Sample], warmup: float) -> dict[str, tuple[bool, str]]:
    """Each check's verdict and its figures."""
    kept = after_warmup(samples, warmup)
    xs = [s.at_s for s in kept]
    base = kept[0].rss_mib
    band = max(abs(s.rss_mib - base) / base for s in kept)
    found = {"rss": (band <= RSS_BAND, f"max deviation {band:.1%} of {base:.1f} MiB (limit {RSS_BAND:.0%})")}
    for name in ("fds", "tasks"):
        ys = [float(getattr(s, name)) for s in kept]
        growth = projected_growth(xs, ys)
        limit = FLAT_SHARE * sum(ys) / len(ys) + FLAT_FLOOR
        found[name] = (growth <= limit, f"trend {growth:+.1f} over the window (limit {limit:.1f})")
    return found


def redis_growth(samples: Sequence[Sample], warmup: float) -> str:
    kept = after_warmup(samples, warmup)
    grown = (kept[-1].redis_mib - kept[0].redis_mib) * 1024 * 1024
    served = kept[-1].requests - kept[0].requests
    per = grown / served if served else 0.0
    first, last = kept[0].redis_mib, kept[-1].redis_mib
    return f"Redis used_memory {first:.1f} -> {last:.1f} MiB ({per:.0f} B per request)"


def senders() -> list[Sender]:
    return [
        Sender(f"soak-a{a}", f"wf-soak-{a}-{w}", "pair", stream=(a * 5 + w) % 3 == 0)
        for a in range(4)
        for w in range(5)
    ]


class Sampler:
    """Samples of the proxy's process tree, its /ready figures and Redis memory."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.samples: list[Sample] = []
        self.missed: list[str] = []
        self.started = time.monotonic()

    def take_or_note(self) -> None:
        """Take a sample and print it (stderr); a /ready that fails or times out is printed
        and counted in ``missed`` instead."""
        try:
            print(f"  {self.take()}", file=sys.stderr)
        except httpx.HTTPError as exc:
            self.missed.append(f"{time.monotonic() - self.started:.0f} s: {exc!r}")
            print(f"  sample missed: {self.missed[-1]}", file=sys.stderr)

    def take(self) -> Sample:
        pids = process_tree(self.world.proxy_pid())
        ready = httpx.get(f"{self.world.url}/ready", timeout=30).json()  # a fresh connection each time
        memory = self.world.redis_client.info("memory")
        sample = Sample(
            at_s=time.monotonic() - self.started,
            rss_mib=rss_mib(pids),
            fds=open_fds(pids),
            tasks=int(ready["asyncio_tasks"]),
            redis_mib=float(memory["used_memory"]) / (1024 * 1024),
            requests=int(ready["writes"]["learner"].get("submitted", 0)),
        )
        self.samples.append(sample)
        return sample


async def sample_every(sampler: Sampler, every_s: float, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await asyncio.to_thread(sampler.take_or_note)
        await asyncio.sleep(every_s)
    await asyncio.to_thread(sampler.take_or_note)


async def poll_tracking(url: str, seconds: float) -> list[str]:
    """GET the tracking endpoints every POLL_S for ``seconds`` (starting after one interval,
    once the polled workflow exists); ``path status`` of every non-200 answer."""
    bad = []
    paths = ("/v1/stats", "/v1/workflows", "/v1/workflows/wf-soak-0-0", "/metrics", "/ready")
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await asyncio.sleep(POLL_S)
            for path in paths:
                try:
                    if (status := (await http.get(path)).status_code) != 200:
                        bad.append(f"{path} {status}")
                except httpx.HTTPError as exc:
                    bad.append(f"{path} {exc!r}")
    return bad


async def soak(
    world: World, *, seconds: float, rate: float, every_s: float
) -> tuple[LoadRun, Sampler, list[str]]:
    world.upstream.set_profile("primary", failure_rate=0.05, fail_status=503)
    sampler = Sampler(world)
    load, _, bad_polls = await asyncio.gather(
        run_load(world.url, senders(), rate, seconds),
        sample_every(sampler, every_s, seconds),
        poll_tracking(world.url, seconds),
    )
    return load, sampler, bad_polls


def format_curves(samples: Sequence[Sample]) -> str:
    lines = ["| t (s) | RSS (MiB) | fds | asyncio tasks | Redis used (MiB) | requests |", "|---" * 6 + "|"]
    lines += [
        f"| {s.at_s:.0f} | {s.rss_mib:.1f} | {s.fds} | {s.tasks} | {s.redis_mib:.2f} | {s.requests} |"
        for s in samples
    ]
    return "\n".join(lines)


def top_errors(results: Sequence[Result], top: int = 3) -> list[tuple[str, int]]:
    """The most frequent error texts clients saw (first 100 characters), with counts."""
    return Counter(r.error[:100] for r in results if r.failed).most_common(top)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=0.2, help="share of samples skipped")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a check fails")
    args = parser.parse_args(argv)
    with World() as world:
        load, sampler, bad_polls = asyncio.run(
            soak(world, seconds=args.minutes * 60, rate=args.rate, every_s=args.every)
        )
    failed = sum(r.failed for r in load.results)
    sent = len(load.results)
    print(f"requests {sent} at {load.rate:.0f}/s, client failures {failed}, failed polls {bad_polls}")
    print(f"answered {load.answered_rate:.0f}/s end to end; errors seen: {top_errors(load.results)}")
    print(format_curves(sampler.samples))
    print(f"samples missed (/ready failed or took > 30 s): {sampler.missed or 'none'}")
    verdicts = checks(sampler.samples, args.warmup)
    for name, (ok, text) in verdicts.items():
        print(f"{name}: {'flat' if ok else 'GROWING'}: {text}")
    print(redis_growth(sampler.samples, args.warmup))
    return 1 if args.strict and not all(ok for ok, _ in verdicts.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
