"""A minute of fixed-rate load (bench/soak.py, short) with Redis and the tracking endpoints
polled: resident memory within +-10% after warm-up, file descriptors and asyncio tasks with
no growth trend (Theil-Sen slope), no failed request or poll. The proxy is frozen (SIGSTOP)
for 1.5 s at 40% of the window, as a loaded CI machine stalls it: the burst of connections
the open-loop load then opens must drain, not read as growth. The curves are printed."""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import threading
import time

import pytest

from bench.harness.world import World
from bench.soak import Sample, checks, format_curves, projected_growth, redis_growth, soak

pytestmark = pytest.mark.soak

SECONDS = 50.0
RATE = 100.0
EVERY_S = 2.5
WARMUP = 0.2
STALL_AT_S = 0.4 * SECONDS
STALL_S = 1.5


def freeze(pid: int, at_s: float, for_s: float) -> threading.Thread:
    """A started thread that stops process ``pid`` at ``at_s`` from now for ``for_s``."""

    def run() -> None:
        time.sleep(at_s)
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(for_s)
        finally:
            os.kill(pid, signal.SIGCONT)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_soak_shows_no_growth(capsys: pytest.CaptureFixture[str]) -> None:
    with World() as world:
        stall = freeze(world.proxy_pid(), STALL_AT_S, STALL_S)
        load, sampler, bad_polls = asyncio.run(soak(world, seconds=SECONDS, rate=RATE, every_s=EVERY_S))
        stall.join()
    samples = sampler.samples
    verdicts = checks(samples, WARMUP)
    with capsys.disabled():
        print(f"\nsoak: {len(load.results)} requests at {load.rate:.0f}/s\n{format_curves(samples)}")
        print("\n".join(f"{name}: {text}" for name, (_, text) in verdicts.items()))
        print(redis_growth(samples, WARMUP))
    assert len(samples) >= SECONDS / EVERY_S * 0.8
    fds = [s.fds for s in samples]
    assert max(fds) > 2 * statistics.median(fds)  # the stall's burst was seen (a loaded machine may add more)
    assert sum(r.failed for r in load.results) == 0
    assert bad_polls == [] and sampler.missed == []
    assert all(ok for ok, _ in verdicts.values()), verdicts


def _samples(values: list[float]) -> list[Sample]:
    return [Sample(float(i), v, int(v), int(v), 1.0, i) for i, v in enumerate(values)]


def test_the_checks_catch_growth() -> None:
    assert projected_growth([0.0, 1.0, 2.0], [10.0, 20.0, 30.0]) == pytest.approx(20.0)
    flat = checks(_samples([100, 100, 102, 99, 101, 100, 98, 100]), WARMUP)
    assert all(ok for ok, _ in flat.values())
    growing = checks(_samples([100, 100, 110, 120, 130, 140, 150, 160]), WARMUP)
    assert not any(ok for ok, _ in growing.values())


def test_a_burst_that_drains_is_not_growth_but_a_leak_with_a_burst_is() -> None:
    steady = [36.0, 37, 40, 41, 37, 37, 37, 38, 39, 39, 41, 33, 36, 38, 37, 37, 37, 36]
    burst = checks(_samples([*steady, 220, 220, 100]), WARMUP)
    assert burst["fds"][0], burst
    leak = [36.0 + 3 * i for i in range(len(steady))]
    leaking = checks(_samples([*leak, 220, 220, 100]), WARMUP)
    assert not leaking["fds"][0], leaking
