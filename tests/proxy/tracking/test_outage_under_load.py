"""Redis frozen (SIGSTOP) and killed+restarted under load: no posterior or tracking update lost.

Runs bench/outage_load.py (the store and tracking writers driven as the proxy drives them,
one task per request) with 6,000 requests in each outage: 12,000 posterior deltas and 36,000
tracking script calls per outage, more than the 10,000-item outage buffers held when they
dropped the oldest. Prints the figures (and the request rate reached).
"""

from __future__ import annotations

import json
import subprocess
import sys

from support.paths import REPO

OUTAGE_REQUESTS = 6000


def test_stall_and_restart_under_load_lose_nothing() -> None:
    command = [sys.executable, str(REPO / "bench" / "outage_load.py"), "--json"]
    command += ["--rate", "2000", "--outage", str(OUTAGE_REQUESTS), "--warm", "500"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    print(figures)
    assert figures["requests"] == 2 * OUTAGE_REQUESTS + 3 * 500
    lost = ["lost_posterior", "lost_stats_calls", "lost_workflow_requests", "lost_decision_records"]
    assert {name: figures[name] for name in lost} == dict.fromkeys(lost, 0)
    assert figures["pooled_minus_sum_of_agents"] == 0
    assert figures["agents_listed"] == 8
    assert (figures["store_dropped"], figures["tracking_dropped"], figures["pending_after"]) == (0, 0, 0)
