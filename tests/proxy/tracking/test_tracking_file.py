"""MemoryTracking's state file: exact restore, expiry, corruption, failed saves, periodic saves."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from support.clocks import FakeClock

from proxy.tracking import tracking_file
from proxy.tracking.backend import record_fields
from proxy.tracking.memory import MemoryTracking
from proxy.tracking.records import DecisionRecord, Tracked
from storage.embedded import state_file

RETENTION = 1000.0
TTL = 100.0


def backend(path: Path | None, clock: FakeClock, **kw: Any) -> MemoryTracking:
    options: dict[str, Any] = {"retention_s": RETENTION, "decision_ttl_s": TTL, **kw}
    return MemoryTracking(clock=clock, state_file=path, **options)


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


def tracked(request_id: str, at: float, workflow: str | None = "wf", agent: str = "planner") -> Tracked:
    return Tracked(
        agent=agent,
        workflow=workflow,
        request_id=request_id,
        at=at,
        stats={"m1|calls": 1.0, "m1|lat_sum": 0.125},
        workflow_counts={"requests": 1.0, f"{agent}|m1|calls": 1.0} if workflow else {},
        decision=record(request_id, workflow=workflow),
    )


async def view(b: MemoryTracking, workflows: tuple[str, ...], requests: tuple[str, ...]) -> dict[str, Any]:
    """Everything the backend answers about these workflows and requests."""
    return {
        "agents": await b.agents(),
        "stats": await b.stats(await b.agents()),
        "workflows": {wf: await b.workflow(wf) for wf in workflows},
        "recent": [await b.recent_workflows(scope, 10) for scope in (None, "planner", "coder")],
        "decisions": {rid: await b.decision(rid) for rid in requests},
    }


def names(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def test_tracking_file_sits_next_to_the_state_file() -> None:
    assert tracking_file.path_for(Path("/d/state.json")) == Path("/d/state.tracking.json")
    assert tracking_file.path_for(Path("/d/state")) == Path("/d/state.tracking")


async def test_state_survives_restart_exactly(tmp_path: Path) -> None:
    path = tmp_path / "state.tracking.json"
    clock = FakeClock(1000.0)
    first = backend(path, clock)
    await first.write_many([tracked("r1", 1000.0), tracked("r2", 1001.0, agent="coder")])
    await first.write(tracked("r3", 1002.0, workflow="other"))
    await first.write(tracked("r4", 1003.0, workflow=None))
    assert await first.finish("other", "success", 0.5, 1004.0)
    assert await first.swap_applied("r2", 0.75, 0.25, 0.1)
    before = await view(first, ("wf", "other"), ("r1", "r2", "r3", "r4"))
    await first.close()
    assert names(tmp_path) == ["state.tracking.json"]

    clock.now = 1010.0
    again = backend(path, clock)
    after = await view(again, ("wf", "other"), ("r1", "r2", "r3", "r4"))
    assert after == before
    assert after["stats"]["planner"] == {"m1|calls": 3.0, "m1|lat_sum": 0.375}
    assert after["decisions"]["r2"].applied == 0.25 and after["decisions"]["r2"].score == 0.1
    assert after["workflows"]["other"].meta["outcome"] == "success"
    assert after["workflows"]["wf"].request_ids == ["r1", "r2"]
    assert again.corrupt_entries == 0
    # restored state keeps accumulating
    await again.write(tracked("r5", 1011.0))
    assert (await again.stats(["planner"]))["planner"]["m1|calls"] == 4.0
    assert (await again.workflow("wf")).request_ids == ["r1", "r2", "r5"]  # type: ignore[union-attr]


async def test_expired_entries_are_not_restored(tmp_path: Path) -> None:
    path = tmp_path / "state.tracking.json"
    clock = FakeClock(0.0)
    first = backend(path, clock)
    await first.write(tracked("old", 0.0, workflow="wf-old"))
    await first.write(tracked("new", 50.0, workflow="wf-new"))
    await first.close()

    clock.now = TTL + 10.0  # "old"'s decision expired (at TTL); "new"'s lives until 150
    second = backend(path, clock)
    assert await second.decision("old") is None
    assert (await second.decision("new")) == record("new", workflow="wf-new")
    assert await second.workflow("wf-old") is not None  # workflows live RETENTION

    assert await second.save()
    assert saved(path, "decisions") == ["new"]  # not held in memory: not saved again
    assert saved(path, "workflows") == ["wf-old", "wf-new"]

    clock.now = RETENTION + 10.0  # "wf-old" expired, "wf-new" lives until 1050
    third = backend(path, clock)
    assert await third.workflow("wf-old") is None
    assert [wf for wf, _ in await third.recent_workflows(None, 10)] == ["wf-new"]
    assert (await third.stats(["planner"]))["planner"]["m1|calls"] == 2.0  # counters never expire
    assert await third.save()
    assert saved(path, "workflows") == ["wf-new"]
    assert saved(path, "decisions") == []
    recent = orjson.loads(path.read_bytes())["recent"]
    assert [[wf for wf, _ in items] for _, items in recent] == [["wf-new"], ["wf-new"]]


def saved(path: Path, section: str) -> list[str]:
    """The ids of the workflows or decisions stored in the file, in file order."""
    return [row[0] for row in orjson.loads(path.read_bytes())[section]]


async def test_a_shorter_ttl_applies_to_restored_records(tmp_path: Path) -> None:
    path = tmp_path / "state.tracking.json"
    clock = FakeClock(0.0)
    first = backend(path, clock)
    await first.write(tracked("r1", 0.0))
    await first.close()
    clock.now = 10.0
    shorter = backend(path, clock, decision_ttl_s=5.0, retention_s=20.0)
    assert await shorter.decision("r1") is not None
    assert await shorter.workflow("wf") is not None
    clock.now = 15.5  # 10 + 5: the record expires by the new TTL, not at 0 + 100
    assert await shorter.decision("r1") is None
    assert await shorter.workflow("wf") is not None
    clock.now = 30.5  # 10 + 20
    assert await shorter.workflow("wf") is None


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
async def test_unusable_file_is_moved_aside_and_tracking_starts_empty(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.tracking.json"
    path.write_bytes(content)
    clock = FakeClock(0.0)
    with caplog.at_level(logging.WARNING, logger="model_manager.tracking"):
        fresh = backend(path, clock)
    assert any("unusable" in r.getMessage() for r in caplog.records)
    assert await fresh.agents() == []
    aside = [n for n in names(tmp_path) if n.startswith("state.tracking.json.corrupt-")]
    assert [(tmp_path / n).read_bytes() for n in aside] == [content]
    await fresh.write(tracked("r1", 0.0))
    await fresh.close()
    assert await backend(path, clock).decision("r1") == record("r1")


async def test_corrupt_entries_are_skipped_and_counted(tmp_path: Path) -> None:
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
    b = backend(path, FakeClock(0.0))
    assert b.corrupt_entries == 2 + 3 + 2 + 3
    assert await b.stats(["planner", "coder"]) == {"planner": {"m1|calls": 2.0}, "coder": {}}
    assert (await b.workflow("wf")) is not None and await b.workflow("wf2") is None
    assert await b.recent_workflows(None, 10) == [("wf", 3.0)]
    assert await b.decision("r1") == record("r1")
    assert await b.decision("r2") is None


async def test_failed_save_keeps_the_old_file_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.tracking.json"
    clock = FakeClock(0.0)
    b = backend(path, clock)
    await b.write(tracked("r1", 0.0))
    assert await b.save() is True
    before = path.read_bytes()

    def broken_replace(src: str, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(state_file.os, "replace", broken_replace)
    await b.write(tracked("r2", 1.0))
    assert await b.save() is False
    assert path.read_bytes() == before
    assert names(tmp_path) == ["state.tracking.json"]
    assert await backend(path, clock).decision("r2") is None
    monkeypatch.undo()
    await b.close()  # still dirty: the final save writes r2
    assert await backend(path, clock).decision("r2") == record("r2")


async def test_unwritable_directory_does_not_raise(tmp_path: Path) -> None:
    b = backend(tmp_path / "missing-dir" / "state.tracking.json", FakeClock(0.0))
    await b.write(tracked("r1", 0.0))
    assert await b.save() is False
    await b.close()


async def test_periodic_save_after_start(tmp_path: Path) -> None:
    path = tmp_path / "state.tracking.json"
    b = backend(path, FakeClock(0.0), save_interval_s=0.02)
    await b.start()
    await b.write(tracked("r1", 0.0))
    for _ in range(200):
        if path.exists():
            break
        await asyncio.sleep(0.01)
    assert await backend(path, FakeClock(0.0)).decision("r1") == record("r1")
    await b.close()


async def test_without_a_state_file_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    b = backend(None, FakeClock(0.0))
    await b.start()
    await b.write(tracked("r1", 0.0))
    assert await b.save() is False
    await b.close()
    assert names(tmp_path) == []
