"""Fuzz a real proxy: schemathesis cases from GET /openapi.json and hostile raw headers and
bodies, on Redis and on the embedded store (see tests/support/fuzzing.py for the properties).

    python bench/fuzz.py --cases 10000        # about a minute per 1,000 cases on a busy machine

Prints the case count per run, the status counts and every finding; exit 1 when any was found.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # the repo first: tests/proxy must not shadow proxy/
from support.fuzz_target import KINDS, fuzz_target  # noqa: E402
from support.fuzzing import Report, run_hostile, run_schemathesis  # noqa: E402
from support.redis_server import RedisServer  # noqa: E402
from support.servers import UvicornThread  # noqa: E402

from proxy.simulator.app import create_simulator_app  # noqa: E402

RUNS = (("schemathesis", run_schemathesis, 0.6), ("hostile", run_hostile, 0.4))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--cases", type=int, default=10_000, help="total cases (default 10000)")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # uvicorn's "Invalid HTTP request" line per hostile case
    total, findings = 0, []
    with (
        tempfile.TemporaryDirectory() as tmp,
        RedisServer(Path(tmp) / "redis") as redis_server,
        UvicornThread(create_simulator_app(seed=0)) as upstream,
    ):
        for kind in KINDS:
            for name, run, share in RUNS:
                report = Report()
                wanted = int(args.cases * share / len(KINDS))
                state_dir = Path(tmp) / f"{kind}-{name}"
                state_dir.mkdir()
                with fuzz_target(
                    kind, f"{upstream.url}/v1", redis_url=redis_server.url, state_dir=state_dir
                ) as target:
                    run(target, report, wanted, args.seed)
                total += report.cases
                print(f"{kind:9} {name:13} cases {report.cases:6} {sorted(report.statuses.items())}")
                findings += [f"{kind} {line}" for line in report.lines()]
    print(f"total cases: {total}; findings: {len(findings)}")
    for line in findings:
        print(line)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
