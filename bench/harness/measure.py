"""One benchmark run: start targets per upstream flavour, sample them alternately, record."""

from __future__ import annotations

import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from harness import procs, profile, targets
from harness.load import HEADERS, probe_ttft, request_body, run_wrk, write_wrk_script
from harness.procs import Supervisor
from harness.targets import Target
from harness.upstream import Upstream

MODES = ("json", "sse")
LOG_PROBLEM = re.compile(r"WARNING|ERROR|CRITICAL|Traceback|Warning:|Exception")
NUMBERS = re.compile(r"\d+")
PY_WARNING = re.compile(r"(\w*Warning: .*)")
PROFILE_CONC = 8


@dataclass(frozen=True)
class Plan:
    seconds: float
    warmup_s: float
    reps: int
    concurrency: tuple[int, ...]
    ttft_requests: int
    workers2: bool
    flavours: tuple[str, ...] = targets.FLAVOURS
    acompletion: bool = False
    baseline: Path | None = None
    """Another checkout's ``model-manager`` executable, run as target ``ours-before``."""
    variant: dict[str, Any] | None = None
    """router.policy_options of target ``ours-variant`` (None: no such target)."""
    variant_env: dict[str, str] = field(default_factory=dict)
    """Environment added to ``ours-variant``'s (e.g. LOG_LEVEL=WARNING: no access lines)."""
    proxy_cpus: str = "0"
    load_cpus: str = "1"
    both_cpus: str = "0,1"


@dataclass
class Context:
    """Shared resources of one run (built in run.py, passed explicitly)."""

    plan: Plan
    sup: Supervisor
    workdir: Path
    upstream: Upstream
    redis_url: str
    litellm_bin: Path | None
    ours_reason: str | None
    py_spy: Path | None = None
    results: dict[str, Any] = field(default_factory=dict)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_all(ctx: Context) -> dict[str, Any]:
    ctx.results.update(runs=[], ttft=[], processes=[], unavailable={}, profiles=[], log_findings=[])
    scripts = {mode: _script(ctx.workdir, mode) for mode in MODES}
    for flavour in ctx.plan.flavours:
        run_flavour(ctx, flavour, scripts)
    return ctx.results


def _script(workdir: Path, mode: str) -> Path:
    body = request_body(model="auto", stream=mode == "sse")
    return write_wrk_script(workdir / f"{mode}.lua", body)


def run_flavour(ctx: Context, flavour: str, scripts: dict[str, Path]) -> None:
    log(f"== upstream flavour: {flavour}")
    started = start_targets(ctx, flavour)
    try:
        warm_up(ctx, started, scripts)
        record_memory(ctx, flavour, started, "warm")
        for mode in MODES:
            for conc in ctx.plan.concurrency:
                sample_cell(
                    ctx,
                    flavour=flavour,
                    mode=mode,
                    conc=conc,
                    started=started,
                    script=scripts[mode],
                )
        sample_ttft(ctx, flavour, started)
        if ctx.py_spy is not None:
            profile_targets(ctx, flavour, started, scripts)
        record_memory(ctx, flavour, started, "after")
    finally:
        for target in started:
            if target.name != "direct":
                ctx.sup.stop(target.child)
                findings = scan_log(target.child.log_path)
                ctx.results["log_findings"].append(
                    {"flavour": flavour, "target": target.name, "lines": findings}
                )


def start_targets(ctx: Context, flavour: str) -> list[Target]:
    started = [targets.direct_target(ctx.upstream, flavour, ctx.plan.load_cpus)]
    for name, starter in _starters(ctx, flavour):
        log(f"starting {name} ...")
        try:
            target = starter()
        except RuntimeError as error:
            _unavailable(ctx, name, f"failed to start: {str(error)[:1500]}")
            continue
        problem = sanity_check(target)
        if problem:
            _unavailable(ctx, name, problem)
            ctx.sup.stop(target.child)
            continue
        log(f"  {name} ready in {target.ready_s:.2f}s")
        started.append(target)
    return started


def _starters(ctx: Context, flavour: str) -> list[tuple[str, Callable[[], Target]]]:
    plan, sup, work = ctx.plan, ctx.sup, ctx.workdir
    found: list[tuple[str, Callable[[], Target]]] = []
    if ctx.ours_reason is not None:
        _unavailable(ctx, "ours", ctx.ours_reason)
    else:
        ours = partial(
            targets.start_ours,
            sup,
            work,
            config=targets.ours_config(ctx.upstream, flavour, ctx.redis_url),
            flavour=flavour,
        )
        found.append(("ours", partial(ours, name="ours", workers=1, cpus=plan.proxy_cpus)))
        if plan.baseline is not None:
            before = partial(ours, name="ours-before", workers=1, cpus=plan.proxy_cpus, binary=plan.baseline)
            found.append(("ours-before", before))
        if plan.variant is not None:
            config = _ours_routed(ctx, flavour, {"policy_options": plan.variant})
            cpus, env = plan.proxy_cpus, plan.variant_env
            variant = partial(ours, name="ours-variant", workers=1, cpus=cpus, env=env)
            found.append(("ours-variant", partial(variant, config=config)))
        if plan.workers2 and flavour == "openai":
            found.append(("ours-w2", partial(ours, name="ours-w2", workers=2, cpus=plan.both_cpus)))
        if plan.acompletion and flavour == "anthropic":
            config = _ours_routed(ctx, flavour, {"direct_translation": False})
            acompletion = partial(ours, name="ours-acompletion", workers=1, cpus=plan.proxy_cpus)
            found.append(("ours-acompletion", partial(acompletion, config=config)))
    if ctx.litellm_bin is not None:
        litellm = partial(
            targets.start_litellm,
            sup,
            work,
            name="litellm",
            litellm_bin=ctx.litellm_bin,
            config=targets.litellm_config(ctx.upstream, flavour),
            flavour=flavour,
            cpus=plan.proxy_cpus,
        )
        found.append(("litellm", litellm))
    return found


def _ours_routed(ctx: Context, flavour: str, router: dict[str, Any]) -> dict[str, Any]:
    """Our target's config with this ``router`` section."""
    config = targets.ours_config(ctx.upstream, flavour, ctx.redis_url)
    config["router"] = router
    return config


def _unavailable(ctx: Context, name: str, reason: str) -> None:
    log(f"  {name}: not available: {reason}")
    ctx.results["unavailable"][name] = reason


def sanity_check(target: Target) -> str | None:
    """One plain and one streamed request must succeed before the target is measured."""
    for stream in (False, True):
        body = request_body(model="auto", stream=stream)
        try:
            response = httpx.post(target.url, content=body, headers=HEADERS, timeout=30)
        except httpx.HTTPError as error:
            return f"stream={stream}: {error!r}"
        if response.status_code != 200 or "Hello" not in response.text:
            return f"stream={stream}: HTTP {response.status_code}: {response.text[:300]}"
    return None


def warm_up(ctx: Context, started: list[Target], scripts: dict[str, Path]) -> None:
    for target in started:
        for script in scripts.values():
            run_wrk(
                target.url,
                script,
                connections=8,
                seconds=ctx.plan.warmup_s,
                cpus=ctx.plan.load_cpus,
            )


def _rotated(items: list[Target], rep: int) -> list[Target]:
    shift = rep % len(items)
    return items[shift:] + items[:shift]


def sample_cell(
    ctx: Context, *, flavour: str, mode: str, conc: int, started: list[Target], script: Path
) -> None:
    for rep in range(ctx.plan.reps):
        for target in _rotated(started, rep):
            row = {"flavour": flavour, "mode": mode, "conc": conc, "target": target.name}
            row.update(rep=rep, **measure_one(ctx, target, script, conc))
            ctx.results["runs"].append(row)
            log(
                f"  {flavour}/{mode} c={conc} rep={rep} {target.name:8s} "
                f"{row['rps']:9.1f} req/s  p50 {row['p50_ms']:8.2f} ms  "
                f"errors {row['errors']}  other load on core {ctx.plan.proxy_cpus}: "
                f"{'n/a' if row['other_load'] is None else format(row['other_load'], '.0%')}"
            )


SETTLE_IDLE = 0.05
"""The proxy core counts as idle below this share of busy time over SETTLE_WINDOW_S."""
SETTLE_WINDOW_S = 0.2
SETTLE_LIMIT_S = 20.0


def settle(core: set[int]) -> float:
    """Wait (up to SETTLE_LIMIT_S) until ``core`` is idle, e.g. until a proxy sampled just
    before has drained the requests it had queued; the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < SETTLE_LIMIT_S:
        busy_before = procs.core_busy_seconds(core)
        time.sleep(SETTLE_WINDOW_S)
        if (procs.core_busy_seconds(core) - busy_before) / SETTLE_WINDOW_S < SETTLE_IDLE:
            break
    return time.monotonic() - started


def measure_one(ctx: Context, target: Target, script: Path, conc: int) -> dict[str, Any]:
    """One wrk sample plus the target's CPU and what other processes used on the proxy core,
    taken once the proxy core has settled."""
    core = {int(ctx.plan.proxy_cpus)}
    settle(core)
    cpu_before, busy_before = procs.cpu_seconds(target.child.pid), procs.core_busy_seconds(core)
    started = time.monotonic()
    result = run_wrk(target.url, script, connections=conc, seconds=ctx.plan.seconds, cpus=ctx.plan.load_cpus)
    wall = time.monotonic() - started
    cpu = procs.cpu_seconds(target.child.pid) - cpu_before
    busy = procs.core_busy_seconds(core) - busy_before
    own = cpu if target.cpus == ctx.plan.proxy_cpus else 0.0
    other = None if target.cpus == ctx.plan.both_cpus else max(busy - own, 0.0) / wall
    return {
        **asdict(result),
        "cpu_ms_per_req": 1000 * cpu / max(result.requests, 1),
        "other_load": other,
    }


def sample_ttft(ctx: Context, flavour: str, started: list[Target]) -> None:
    body = request_body(model="auto", stream=True)
    for rep in range(ctx.plan.reps):
        for target in _rotated(started, rep):
            result = probe_ttft(target.url, body, requests=ctx.plan.ttft_requests)
            ctx.results["ttft"].append(
                {"flavour": flavour, "target": target.name, "rep": rep, **asdict(result)}
            )
            log(f"  {flavour} TTFT rep={rep} {target.name:8s} p50 {result.p50_ms:.2f} ms")


def record_memory(ctx: Context, flavour: str, started: list[Target], when: str) -> None:
    for target in started:
        rss, pss = procs.memory_mb(target.child.pid)
        row = _process_row(ctx, flavour, target)
        row.update({f"rss_{when}_mb": rss, f"pss_{when}_mb": pss})


def _process_row(ctx: Context, flavour: str, target: Target) -> dict[str, Any]:
    rows: list[dict[str, Any]] = ctx.results["processes"]
    for row in rows:
        if row["flavour"] == flavour and row["target"] == target.name:
            return row
    row = {"flavour": flavour, "target": target.name, "ready_s": target.ready_s}
    rows.append(row)
    return row


def profile_targets(ctx: Context, flavour: str, started: list[Target], scripts: dict[str, Path]) -> None:
    """py-spy on each proxy (not during the timed samples) under wrk at c=8."""
    assert ctx.py_spy is not None
    for target in (t for t in started if t.name in ("ours", "litellm")):
        for mode, script in scripts.items():
            raw = ctx.workdir / f"profile-{target.name}-{flavour}-{mode}.txt"
            recorder = profile.start_recording(ctx.py_spy, target.child.pid, ctx.plan.seconds, raw)
            try:
                row = measure_one(ctx, target, script, PROFILE_CONC)
                recorder.wait(timeout=ctx.plan.seconds + 30)
            finally:
                recorder.kill()
            if not raw.exists():
                log(f"  py-spy produced nothing for {target.name} {flavour}/{mode}")
                continue
            summary = profile.summarise(raw)
            ctx.results["profiles"].append(
                {
                    "target": target.name,
                    "flavour": flavour,
                    "mode": mode,
                    "conc": PROFILE_CONC,
                    "cpu_ms_per_req": row["cpu_ms_per_req"],
                    **summary,
                }
            )
            log(f"  profiled {target.name} {flavour}/{mode}: {summary['by_package'][:4]}")


def scan_log(path: Path, top: int = 8) -> list[tuple[str, int]]:
    """Warnings, errors and tracebacks in a child's log, numbers blanked, most frequent first."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    hits = Counter(
        _normalise(line)
        for line in text.splitlines()
        if LOG_PROBLEM.search(line) and "tracemalloc" not in line
    )
    return hits.most_common(top)


def _normalise(line: str) -> str:
    """Python warnings without the varying file:line prefix; digits blanked."""
    tail = PY_WARNING.search(line)
    return NUMBERS.sub("N", tail[1] if tail else line.strip())[:200]
