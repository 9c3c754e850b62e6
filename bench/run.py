"""Benchmark Model Manager against the bare upstream and LiteLLM's own proxy.

    python bench/run.py            # full run, about 12 minutes
    python bench/run.py --quick    # one repetition, short runs, about 3 minutes

Fake upstream: nginx (fixed OpenAI / Anthropic bodies, JSON or SSE). Load: wrk. Results: a markdown
table on stdout and bench/results/<timestamp>.{md,json,png}. Loopback only; every child process is
stopped at exit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from harness import procs, profile, report, targets  # noqa: E402
from harness.measure import Context, Plan, log, run_all  # noqa: E402
from harness.procs import Supervisor  # noqa: E402
from harness.upstream import start_nginx  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 repetition, 2 s runs (~3 min)")
    parser.add_argument("--reps", type=int, help="repetitions per cell (default 3, quick 1)")
    parser.add_argument("--seconds", type=float, help="wrk duration per sample (default 4, quick 2)")
    parser.add_argument("--concurrency", default="1,8,64", help="comma-separated (default 1,8,64)")
    parser.add_argument(
        "--flavours",
        default=",".join(targets.FLAVOURS),
        help="comma-separated upstream flavours (default all)",
    )
    parser.add_argument(
        "--acompletion",
        action="store_true",
        help="also run ours with router.direct_translation off (litellm.acompletion), anthropic flavour",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout's model-manager executable (e.g. OLD/.venv/bin/model-manager), "
        "run as target ours-before in the same run",
    )
    parser.add_argument(
        "--variant",
        type=json.loads,
        metavar="JSON",
        help='also run ours with these router.policy_options as target ours-variant, e.g. '
        '\'{"change_memory": 0}\' (the drift detector off)',
    )
    parser.add_argument(
        "--variant-env",
        action="append",
        default=[],
        type=targets.env_pair,
        metavar="KEY=VALUE",
        help="environment for ours-variant (repeatable), e.g. LOG_LEVEL=WARNING (no access lines)",
    )
    parser.add_argument("--no-workers2", action="store_true", help="skip our proxy with --workers 2")
    parser.add_argument("--no-litellm", action="store_true", help="skip LiteLLM's proxy")
    parser.add_argument("--nice", type=int, default=-10, help="niceness for the harness and children (root)")
    parser.add_argument(
        "--profile", action="store_true", help="also sample each proxy with py-spy under load"
    )
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    return parser.parse_args(argv)


def make_plan(args: argparse.Namespace) -> Plan:
    return Plan(
        seconds=args.seconds or (2.0 if args.quick else 4.0),
        warmup_s=1.0 if args.quick else 2.0,
        reps=args.reps or (1 if args.quick else 3),
        concurrency=tuple(int(c) for c in args.concurrency.split(",")),
        ttft_requests=10 if args.quick else 30,
        workers2=not args.no_workers2,
        acompletion=args.acompletion,
        baseline=args.baseline,
        variant=args.variant,
        variant_env=dict(args.variant_env),
        flavours=tuple(f for f in args.flavours.split(",") if f in targets.FLAVOURS),
    )


def notes(plan: Plan) -> list[str]:
    return [
        f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, LiteLLM {targets.LITELLM_VERSION}",
        f"pinning: proxies under test (1 worker) on core {plan.proxy_cpus}; nginx upstream, "
        f"redis, wrk and this harness (TTFT probe) on core {plan.load_cpus}; "
        f"`ours-w2` (--workers 2) spans cores {plan.both_cpus}, so it shares a core with "
        "the load generator and the upstream",
        f"wrk -t1 -c<c> -d{plan.seconds:g}s --latency, {plan.reps} repetition(s) per cell, "
        "targets alternated within each repetition (order rotated per repetition)",
        "upstream: nginx 1 worker, fixed body; `+p50`/`+p99` = target minus direct in the same "
        "repetition; CPU ms/req = (utime+stime of the process tree) / requests",
        "direct/anthropic = nginx's Anthropic Messages fixture (no translation); proxies "
        "translate it to OpenAI chat completions via litellm",
        f"TTFT: {plan.ttft_requests} sequential streamed requests per repetition on one raw "
        "keep-alive socket, time to the first `data:` bytes",
        f"`other load`: CPU other processes took on core {plan.proxy_cpus} during a sample "
        "(max over repetitions); for `direct` that core is idle to us, so it is harmless there",
        *_variant_note(plan),
    ]


def _variant_note(plan: Plan) -> list[str]:
    if plan.variant is None:
        return []
    env = " ".join(f"{key}={value}" for key, value in plan.variant_env.items()) or "none"
    return [f"`ours-variant`: router.policy_options {json.dumps(plan.variant)}, added environment: {env}"]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = make_plan(args)
    os.sched_setaffinity(0, {int(plan.load_cpus)})
    reniced = procs.raise_priority(args.nice)
    targets.ensure_tools()
    litellm_bin = None if args.no_litellm else targets.ensure_litellm_venv(BENCH_DIR / ".venv-litellm")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    workdir = args.out / f"{stamp}-work"  # configs and every child's log, kept for reading
    workdir.mkdir(parents=True)
    sup = Supervisor(workdir)
    try:
        py_spy = profile.ensure_py_spy(BENCH_DIR / ".venv-tools") if args.profile else None
        results = execute(plan, sup, workdir, litellm_bin, py_spy)
    except KeyboardInterrupt:
        log(f"interrupted: stopping every child process (logs in {workdir})")
        return 130
    finally:
        sup.stop_all()
    priority = f"all benchmark processes at nice {args.nice}" if reniced else "default priority"
    extra = [f"{priority}; load average at end: {Path('/proc/loadavg').read_text().strip()}"]
    results["meta"] = {"timestamp": stamp, "plan": vars(plan), "notes": notes(plan) + extra}
    print(report.markdown(results))
    for path in report.save(results, args.out, stamp):
        log(f"wrote {path}")
    log(f"configs and process logs: {workdir}")
    return 0


def execute(
    plan: Plan, sup: Supervisor, workdir: Path, litellm_bin: Path | None, py_spy: Path | None
) -> dict[str, Any]:
    started = time.monotonic()
    upstream = start_nginx(sup, workdir, plan.load_cpus)
    redis_url = targets.start_redis(sup, plan.load_cpus)
    ours_reason = targets.ours_unavailable_reason()
    ctx = Context(plan, sup, workdir, upstream, redis_url, litellm_bin, ours_reason, py_spy)
    results = run_all(ctx)
    log(f"benchmark took {time.monotonic() - started:.0f}s")
    return results


if __name__ == "__main__":
    sys.exit(main())
