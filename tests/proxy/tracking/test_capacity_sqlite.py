"""What the embedded SQLite database holds per request, per agent and per workflow (SQLite's
``dbstat``: bytes used in each table's and index's pages, free space left out).

The same traffic as test_capacity (Redis): AGENTS agents, each in WORKFLOWS workflows of 4,
8, ... requests over three models. The figures are printed and checked against the README's
"Capacity" section (within 35%).
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from pathlib import Path

import pytest
from support.servers import FakeUpstream
from support.tracking_support import Starter, backend, chat, config_dict, start_proxy

__all__ = ["backend", "start_proxy"]

AGENTS, WORKFLOWS, STEP = 4, 5, 4
README_BYTES = {
    "decision record": 330,
    "per agent": 2_000,
    "dashboard per agent": 19_000,
    "per workflow": 800,
    "request id in a workflow": 66,
}
"""The README's figures for the embedded database (bytes)."""
GROUPS = {
    "decision": "decision record", "decision_expires": "decision record",
    "stats": "per agent", "posterior": "per agent", "posterior_seq": "per agent",
    "timeline": "dashboard per agent", "timeline_minute": "dashboard per agent",
    "recent_decision": "dashboard per agent", "recent_decision_of": "dashboard per agent",
    "workflow": "per workflow", "workflow_expires": "per workflow", "workflow_count": "per workflow",
    "recent": "per workflow", "recent_at": "per workflow",
    "workflow_request": "request id in a workflow", "workflow_request_of": "request id in a workflow",
}
"""Table or index -> what it is counted as."""


def used_bytes(db: Path) -> dict[str, int]:
    """Bytes used per GROUPS entry (page bytes minus their unused space)."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT name, sum(pgsize - unused) FROM dbstat GROUP BY name").fetchall()
    found: dict[str, int] = defaultdict(int)
    for name, used in rows:
        if name in GROUPS:
            found[GROUPS[name]] += int(used)
    return found


@pytest.mark.parametrize("backend", ["sqlite"])
def test_bytes_per_request_agent_and_workflow_on_the_embedded_database(
    start_proxy: Starter, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    proxy = start_proxy(config_dict(fake_upstream, ("m1", "m2", "m3"), router={"policy": "thompson"}))
    lengths = [STEP * (w + 1) for w in range(WORKFLOWS)]
    for a in range(AGENTS):
        for w, length in enumerate(lengths):
            client = proxy.client(f"agent-{a}", workflow=f"wf-{a}-{w}")
            for _ in range(length):
                chat(client)
    requests = AGENTS * sum(lengths)
    proxy.wait_recorded(requests)
    assert proxy.get("/v1/workflows?limit=1000").status_code == 200  # a read writes the buffer first
    used = used_bytes(tmp_path / "state.db")
    measured = {
        "decision record": used["decision record"] / requests,
        "per agent": used["per agent"] / AGENTS,
        "dashboard per agent": used["dashboard per agent"] / AGENTS,
        "per workflow": used["per workflow"] / (AGENTS * WORKFLOWS),
        "request id in a workflow": used["request id in a workflow"] / requests,
    }
    print("embedded database bytes:", {name: round(value) for name, value in measured.items()})
    with sqlite3.connect(tmp_path / "state.db") as conn:
        assert conn.execute("SELECT count(*) FROM decision").fetchone() == (requests,)
    for name, figure in README_BYTES.items():
        assert 0.65 * figure <= measured[name] <= 1.35 * figure, (name, measured[name], figure)
