"""``model-manager demo``: the proxy on simulated models, live traffic, the router learning.

Starts the real proxy in process (embedded store, no key, no Redis) on the models of
proxy.cli.demo.config, sends support tickets as workflows of three agents, makes
``sim-turbo`` fail from halfway on, and shows each agent's first-choice shares converging
with the fallbacks and failures (a live table on a terminal, plain lines otherwise). Ends
after ``--seconds`` (or ``--requests`` calls), or on Ctrl-C (exit 130); ``--keep-serving``
leaves the proxy up for the dashboard until Ctrl-C (exit 0). ``--json`` prints a summary
on stdout and everything else on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import httpx
import orjson
from rich.console import Console
from rich.live import Live

from proxy.app import create_app
from proxy.cli.demo import config as demo_config
from proxy.cli.demo import view as demo_view
from proxy.cli.demo.server import DemoServer, bind
from proxy.cli.demo.tally import Tally
from proxy.cli.demo.traffic import Budget, Traffic
from proxy.cli.demo.view import Progress
from proxy.config.settings import parse_config

POLL_S = 0.5
SETTLE_S = 3.0
PLAIN_EVERY_S = 2.0
INTERRUPTED = 130

Show = Callable[[Progress, bool], None]
"""Draws the tally; the flag says it is the final view."""


@dataclass(frozen=True, slots=True)
class Options:
    """The demo's command-line settings."""

    seconds: float
    requests: int | None
    host: str
    port: int
    concurrency: int
    window: int
    keep_serving: bool
    json: bool


def run_demo(options: Options) -> int:
    """The ``demo`` command (on the embedded store whatever REDIS_URL says); the exit code."""
    logging.getLogger().setLevel(logging.ERROR)  # the table is the output; simulated 503s are expected
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    out = sys.stderr if options.json else sys.stdout
    try:
        sock = bind(options.host, options.port)
    except OSError as exc:
        print(f"demo: cannot listen on {options.host}:{options.port}: {exc} (try --port 0)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="model-manager-demo-") as folder:
        return _run(options, sock, Path(folder), out)


def _run(options: Options, sock: socket.socket, folder: Path, out: TextIO) -> int:
    port = int(sock.getsockname()[1])
    url = f"http://{options.host}:{port}"
    document = demo_config.config_document(port, str(folder / "state.json"))
    server = DemoServer(create_app(parse_config(document, source="<demo>")), sock)
    tally = Tally(demo_config.AGENT_MODELS, options.window)
    print(f"Model Manager demo: starting the proxy on {url} (embedded store, simulated models)", file=out)
    try:
        server.start()
        _describe(out)
        run = asyncio.run(_drive(options, url, tally, out))
        _report(options, url, tally, run, out)
        if options.keep_serving and not run.interrupted:
            _serve_until_interrupted(url, out)
        return INTERRUPTED if run.interrupted else 0
    except KeyboardInterrupt:
        print("\ndemo: interrupted, stopping the proxy", file=out)
        return INTERRUPTED
    finally:
        with _ignoring_interrupts():
            server.stop()


def _describe(out: TextIO) -> None:
    """The cast: each agent's models and how it is scored."""
    for agent, models in demo_config.AGENT_MODELS.items():
        weights = demo_config.REWARDS[agent]
        scored = ", ".join(f"{k} {weights[k]:g}" for k in ("quality", "latency", "cost"))
        print(f"  agent {agent}: models {', '.join(models)} (reward: {scored})", file=out)
    print(f"  {demo_config.FAILING_MODEL} starts failing halfway through (503 on 90% of calls)", file=out)


@dataclass
class RunState:
    """How the traffic phase went."""

    started: float
    elapsed_s: float = 0.0
    outage_at_s: float | None = None
    before_outage: dict[str, str | None] | None = None
    calls: int = 0
    workflows: int = 0
    interrupted: bool = False

    def progress(self, planned_s: float) -> Progress:
        outage = None
        if self.outage_at_s is not None:
            outage = f"{demo_config.FAILING_MODEL} failing since {self.outage_at_s:.0f} s"
        return Progress(self.elapsed_s, planned_s, self.calls, self.workflows, outage)


async def _drive(options: Options, url: str, tally: Tally, out: TextIO) -> RunState:
    """Send the traffic, trigger the outage halfway, keep the view current; returns how it ended."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    run = RunState(started=loop.time())

    def interrupt() -> None:
        run.interrupted = True
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt)
    budget = Budget(options.requests, stop)
    traffic = Traffic(url, budget, tally.record)
    task = asyncio.create_task(traffic.run(options.concurrency))
    async with httpx.AsyncClient(base_url=url, timeout=10.0) as control:
        with _view(tally, out) as show:
            watcher = Watcher(options, control, tally, run, budget, traffic)
            await watcher.watch(task, show)
            await _settle(control, tally)
            watcher.count()
            show(run.progress(options.seconds), True)
    return run


@dataclass
class Watcher:
    """The loop beside the traffic: time limit, outage, stats polling, view refresh."""

    options: Options
    control: httpx.AsyncClient
    tally: Tally
    run: RunState
    budget: Budget
    traffic: Traffic

    async def watch(self, task: asyncio.Task[None], show: Show) -> None:
        """Until the traffic ends (cancelled at once on an interrupt)."""
        loop = asyncio.get_running_loop()
        while not task.done():
            self.run.elapsed_s = loop.time() - self.run.started
            self.count()
            if self.run.outage_at_s is None and _halfway(self.options, self.run):
                await self.start_outage()
            if self.run.elapsed_s >= self.options.seconds:
                self.budget.stop.set()
            if self.run.interrupted:
                task.cancel()
            await _poll(self.control, self.tally)
            show(self.run.progress(self.options.seconds), False)
            await asyncio.wait([task], timeout=POLL_S)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def count(self) -> None:
        self.run.calls, self.run.workflows = self.budget.used, self.traffic.workflows

    async def start_outage(self) -> None:
        """Make the failing model fail from now on; remember who preferred what before."""
        path = f"/simulator/_sim/profiles/{demo_config.FAILING_MODEL}"
        await self.control.put(path, json=dict(demo_config.OUTAGE))
        self.run.outage_at_s = self.run.elapsed_s
        self.run.before_outage = {agent: self.tally.preferred(agent) for agent in self.tally.agents}


def _halfway(options: Options, run: RunState) -> bool:
    by_time = run.elapsed_s >= options.seconds / 2
    return by_time or (options.requests is not None and run.calls >= options.requests / 2)


async def _settle(control: httpx.AsyncClient, tally: Tally) -> None:
    """Poll until /v1/stats counts every call (tracking writes land after the responses), or
    SETTLE_S passed (a call cancelled by Ctrl-C may never be counted)."""
    deadline = asyncio.get_running_loop().time() + SETTLE_S
    while True:
        await asyncio.sleep(0.1)
        await _poll(control, tally)
        if tally.settled() or asyncio.get_running_loop().time() > deadline:
            return


async def _poll(control: httpx.AsyncClient, tally: Tally) -> None:
    """Feed one /v1/stats body to the tally (a failed poll is skipped)."""
    with contextlib.suppress(httpx.HTTPError, orjson.JSONDecodeError):
        response = await control.get("/v1/stats")
        if response.status_code == 200:
            tally.observe(orjson.loads(response.content))


@contextlib.contextmanager
def _view(tally: Tally, out: TextIO) -> Iterator[Show]:
    """A ``show(progress, final)`` drawing the tally: live table on a terminal, else lines."""
    console = Console(file=out)
    if console.is_terminal:
        with Live(console=console, refresh_per_second=4, transient=False) as live:

            def redraw(progress: Progress, final: bool) -> None:
                live.update(demo_view.table(tally, progress), refresh=final)

            yield redraw
        return
    last = [0.0]

    def print_line(progress: Progress, final: bool) -> None:
        now = time.monotonic()
        if final or now - last[0] >= PLAIN_EVERY_S:
            last[0] = now
            print(demo_view.plain_line(tally, progress), file=out, flush=True)

    yield print_line


def _report(options: Options, url: str, tally: Tally, run: RunState, out: TextIO) -> None:
    """What the run showed, the URLs to look further, and the JSON summary with ``--json``."""
    preferred = ", ".join(f"{agent} -> {tally.preferred(agent)}" for agent in tally.agents)
    print(f"Preferred models now: {preferred}", file=out)
    failing = demo_config.FAILING_MODEL
    failures = sum(tally.counter(agent, failing, "failures") for agent in tally.agents)
    fallbacks = sum(c.fell_back for c in tally.clients.values())
    print(f"{failing}: {failures} failed calls; {fallbacks} requests answered by a fallback model", file=out)
    print(f"Dashboard: {url}/dashboard", file=out)
    print(f"Stats:     {url}/v1/stats", file=out, flush=True)
    if options.json:
        summary = {
            **tally.summary(),
            "proxy_url": url,
            "dashboard_url": f"{url}/dashboard",
            "stats_url": f"{url}/v1/stats",
            "failing_model": failing,
            "outage_at_s": run.outage_at_s,
            "preferred_before_outage": run.before_outage,
            "seconds": round(run.elapsed_s, 3),
            "calls": run.calls,
            "workflows": run.workflows,
            "interrupted": run.interrupted,
        }
        sys.stdout.write(orjson.dumps(summary).decode() + "\n")
        sys.stdout.flush()


def _serve_until_interrupted(url: str, out: TextIO) -> None:
    """Block until Ctrl-C (or SIGTERM) while the proxy keeps serving."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    print(f"The proxy keeps serving on {url}; press Ctrl-C to stop.", file=out, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)


@contextlib.contextmanager
def _ignoring_interrupts() -> Iterator[None]:
    """SIGINT and SIGTERM ignored while the server shuts down (it is bounded in time)."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
