"""The JSON tracking file format (read now only to migrate it into the SQLite database):
expiry and TTL capping on read, unusable files, corrupt entries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from proxy.tracking import tracking_file
from proxy.tracking.backend import WorkflowRaw, record_fields
from proxy.tracking.memory_state import Expiring, TrackingState
from proxy.tracking.records import DecisionRecord
from storage.embedded.state_file import CorruptStateFile

RETENTION = 1000.0
TTL = 100.0


def record(request_id: str, applied: float = 0.75, workflow: str | None = "wf") -> DecisionRecord:
    return DecisionRecord(
        request_id=request_id,
        agent="planner",
        context="code",
        candidates=("m1", "m2"),
        model="m1",
        workflow=workflow,
        latency_s=0.125,
        ttft_s=None,
        cost_usd=1e-5,
        quality=0.9,
        applied=applied,
    )


def read(path: Path, now: float, **kw: float) -> tuple[TrackingState, int]:
    options = {"retention_s": RETENTION, "decision_ttl_s": TTL, **kw}
    return tracking_file.read(path, now=now, **options)


def test_tracking_file_sits_next_to_the_state_file() -> None:
    assert tracking_file.path_for(Path("/d/state.json")) == Path("/d/state.tracking.json")
    assert tracking_file.path_for(Path("/d/state")) == Path("/d/state.tracking")


def test_encode_and_read_round_trip_exactly(tmp_path: Path) -> None:
    path = tmp_path / "state.tracking.json"
    state = TrackingState(
        stats={"planner": {"m1|calls": 3.0, "m1|lat_sum": 0.375}},
        workflows={"wf": Expiring(900.0, WorkflowRaw({"first_seen": "1.5"}, {"requests": 2.0}, ["r1"]))},
        recent={None: {"wf": 2.0}, "planner": {"wf": 2.0}},
        decisions={"r1": (90.0, record("r1"))},
    )
    path.write_bytes(tracking_file.encode(state))
    assert read(path, now=0.0) == (state, 0)


def test_expired_entries_are_not_read_and_a_shorter_ttl_caps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "state.tracking.json"
    state = TrackingState(
        workflows={"old": Expiring(50.0), "new": Expiring(900.0)},
        recent={None: {"old": 1.0, "new": 2.0}},
        decisions={"gone": (50.0, record("gone")), "kept": (90.0, record("kept"))},
    )
    path.write_bytes(tracking_file.encode(state))
    found, bad = read(path, now=60.0, decision_ttl_s=5.0, retention_s=20.0)
    assert bad == 0
    assert {wf: e.expires for wf, e in found.workflows.items()} == {"new": 80.0}
    assert found.recent == {None: {"new": 2.0}}
    assert {rid: expires for rid, (expires, _) in found.decisions.items()} == {"kept": 65.0}


VALID_DECISION = ["r1", 500.0, record_fields(record("r1"))]
VALID_WORKFLOW = ["wf", 500.0, {"first_seen": "1.0"}, {"requests": 1.0}, ["r1"]]


def document(**sections: Any) -> bytes:
    doc = {"format": "model-manager-tracking", "version": 1, "stats": {}, "workflows": [], "recent": []}
    doc["decisions"] = []
    return orjson.dumps({**doc, **sections})


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\xff garbage",
        b'{"format": "model-manager-tracking", "version": 1, "stats": {',  # cut short
        b"[]",
        document(format="model-manager-state"),
        document(version=2),
        document(stats=[]),
        document(decisions={}),
    ],
)
def test_an_unusable_file_raises(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "state.tracking.json"
    path.write_bytes(content)
    with pytest.raises(CorruptStateFile):
        read(path, now=0.0)


def test_corrupt_entries_are_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "state.tracking.json"
    bad_record = {**record_fields(record("r2")), "applied": "nan"}
    path.write_bytes(
        document(
            stats={"planner": {"m1|calls": 2}, "coder": {"m1|calls": "x"}, "x": []},
            workflows=[VALID_WORKFLOW, ["short"], ["wf2", "soon", {}, {}, []], ["wf3", 9.0, {}, {}, [1]]],
            recent=[[None, [["wf", 3.0], ["gone", 2.0]]], [7, []], ["planner", [["wf"]]]],
            decisions=[VALID_DECISION, ["r2", 500.0, bad_record], "row", ["r3", 500.0, {}]],
        )
    )
    state, bad = read(path, now=0.0)
    assert bad == 2 + 3 + 2 + 3
    assert state.stats == {"planner": {"m1|calls": 2.0}}
    assert list(state.workflows) == ["wf"]
    assert state.recent == {None: {"wf": 3.0}}
    assert {rid: r for rid, (_, r) in state.decisions.items()} == {"r1": record("r1")}
