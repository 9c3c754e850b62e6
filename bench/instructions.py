"""CPU instructions per request of our proxy, counted by valgrind's callgrind.

Wall-clock figures on a shared 2-core VM move by 10-25% between runs minutes apart;
instruction counts of the same work move by about 1%. So "is this change slower?" is
answered here, and ``run.py`` says what that costs in req/s and latency.

    python bench/instructions.py                                    # ours, JSON and SSE
    python bench/instructions.py --baseline OLD/.venv/bin/model-manager \\
        --variant '{"change_memory": 0}' --variant-env LOG_LEVEL=WARNING

Each target is ``model-manager serve`` (1 worker, Redis state, the nginx upstream of run.py)
under callgrind with instrumentation off; ``--warm`` requests run, instrumentation is switched
on, ``--n`` sequential requests (``X-Agent: bench``) are counted, and the total instructions
of the server process divided by ``--n`` is the figure. Requests follow each other at once
(``--gap`` 0), as wrk's one connection sends them. Needs ``valgrind`` (installed with apt-get
when missing, like nginx and redis-server).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import targets
from harness.procs import Supervisor, free_port, wait_ready
from harness.upstream import start_nginx


@dataclass(frozen=True)
class Counted:
    """One server to count: its executable, policy options and added environment."""

    name: str
    binary: Path
    policy_options: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=500, help="requests counted per target and mode")
    parser.add_argument("--warm", type=int, default=100, help="requests before counting (default 100)")
    parser.add_argument("--gap", type=float, default=0.0, help="seconds between requests (default 0)")
    parser.add_argument("--modes", default="json,sse", help="comma-separated: json, sse (default both)")
    parser.add_argument("--baseline", type=Path, help="another checkout's model-manager, as ours-before")
    parser.add_argument(
        "--variant", type=json.loads, metavar="JSON", help="router.policy_options of ours-variant"
    )
    parser.add_argument("--variant-env", action="append", default=[], type=targets.env_pair,
                        metavar="KEY=VALUE", help="environment for ours-variant (repeatable)")
    return parser.parse_args(argv)


def chosen_targets(args: argparse.Namespace) -> list[Counted]:
    found = [Counted("ours", targets.MODEL_MANAGER)]
    if args.baseline is not None:
        found.insert(0, Counted("ours-before", args.baseline))
    if args.variant is not None or args.variant_env:
        variant = Counted("ours-variant", targets.MODEL_MANAGER, args.variant or {}, dict(args.variant_env))
        found.append(variant)
    return found


@dataclass(frozen=True)
class Bench:
    """What every count shares: the children's supervisor, a work directory, the upstream,
    Redis, and the options."""

    sup: Supervisor
    work: Path
    upstream: Any
    redis_url: str
    args: argparse.Namespace


def count(bench: Bench, target: Counted, stream: bool) -> float:
    """Instructions per counted request of ``target`` (millions)."""
    sup, work, redis_url, args = bench.sup, bench.work, bench.redis_url, bench.args
    config = targets.ours_config(bench.upstream, "openai", redis_url)
    if target.policy_options:
        config["router"] = {"policy_options": target.policy_options}
    conf = work / f"{target.name}-{'sse' if stream else 'json'}.yaml"
    conf.write_text(yaml.safe_dump(config))
    port = free_port()
    out = work / f"{conf.stem}.callgrind"
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p", "--instr-atstart=no",
            str(target.binary), "serve", "--config", str(conf), "--host", "127.0.0.1", "--port", str(port)]
    env = {**targets.OFFLINE_ENV, "REDIS_URL": redis_url, **target.env}
    child = sup.start(conf.stem, argv, cpus="0", env=env)
    try:
        wait_ready(child, f"http://127.0.0.1:{port}/health", timeout=600)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        with httpx.Client(timeout=60) as client:
            _send(client, url, stream, args.warm, args.gap)
            time.sleep(1.0)
            _callgrind(["-i", "on"], child.pid)
            _send(client, url, stream, args.n, args.gap)
            time.sleep(1.0)
            _callgrind(["-d"], child.pid)
        time.sleep(1.0)
    finally:
        sup.stop(child)
    return max(_total(path) for path in work.glob(f"{out.name}.*")) / args.n / 1e6


def _send(client: httpx.Client, url: str, stream: bool, n: int, gap: float) -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": "hello there"}], "stream": stream}
    headers = {"X-Agent": "bench", "Authorization": "Bearer bench"}
    for _ in range(n):
        reply = client.post(url, json=body, headers=headers)
        if reply.status_code != 200:
            raise RuntimeError(f"{url} answered {reply.status_code}: {reply.text[:200]}")
        if gap > 0:
            time.sleep(gap)


def _callgrind(flags: list[str], pid: int) -> None:
    subprocess.run(["callgrind_control", *flags, str(pid)], check=True, capture_output=True)


def _total(path: Path) -> int:
    """The instruction total a callgrind output file reports (0 when it has none)."""
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    targets.ensure_tools({**targets.APT_TOOLS, "valgrind": "valgrind", "callgrind_control": "valgrind"})
    work = Path(tempfile.mkdtemp(prefix="mm-instructions-"))
    sup = Supervisor(work)
    bench = Bench(sup, work, start_nginx(sup, work, "1"), targets.start_redis(sup, "1"), args)
    modes = [m for m in args.modes.split(",") if m in ("json", "sse")]
    rows: dict[str, dict[str, float]] = {}
    try:
        for target in chosen_targets(args):
            for mode in modes:
                rows.setdefault(target.name, {})[mode] = figure = count(bench, target, mode == "sse")
                print(f"{target.name} {mode}: {figure:.3f} M instructions/request", flush=True)
    finally:
        sup.stop_all()
    print(report(rows, modes, args))
    return 0


def report(rows: dict[str, dict[str, float]], modes: list[str], args: argparse.Namespace) -> str:
    """A markdown table of instructions per request, with ratios to ours-before if it ran."""
    base = rows.get("ours-before")
    head = "| target | " + " | ".join(f"{m} M instr/req" for m in modes)
    head += " | " + " | ".join(f"{m} vs ours-before" for m in modes) if base else ""
    lines = [f"{args.n} requests counted after {args.warm}, gap {args.gap:g} s", "", head + " |",
             "|---" * (1 + len(modes) * (2 if base else 1)) + "|"]
    for name, figures in rows.items():
        cells = [f"{figures[m]:.3f}" for m in modes]
        if base:
            cells += [f"{figures[m] / base[m]:.3f}x" for m in modes]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
