"""MemoryStore in process memory, and the JSON state file format it used to save (read now
only to migrate it into the SQLite database: proxy.tracking.json_migration)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import orjson
import pytest
from support.clocks import FakeClock

from policies.base import Delta, Evidence, Table
from storage.embedded import state_file
from storage.embedded.store import MemoryStore

AGENT = Table("agent-1")


def test_sync_api_for_offline_use() -> None:
    clock = FakeClock(0.0)
    store = MemoryStore(half_life_s=1.0, clock=clock)
    for _ in range(4):
        store.apply_now([Delta(AGENT, "m", 1.0, 0.0)])
    clock.now = 2.0
    assert store.load_now([AGENT], ["m"])[AGENT]["m"] == Evidence(1.0, 0.0)


async def test_nothing_is_written_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    store = MemoryStore()
    with caplog.at_level(logging.INFO, logger="model_manager.store"):
        await store.start()
    assert "not persisted" in caplog.text
    await store.apply([Delta(AGENT, "m", 1.0, 0.0)])
    assert await store.flush() is True and store.counters() == {"rejected_deltas": 0}
    await store.close()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "content",
    [b"\x00\xff garbage", b"{not json", b"[]", b'{"format": "other", "version": 1, "cells": []}',
     b'{"format": "model-manager-state", "version": 1, "cells": {}}'],
)
def test_an_unusable_json_state_file_raises(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(state_file.CorruptStateFile):
        state_file.read(path)


def test_corrupt_rows_are_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    rows = [
        ["a", "", "good", 1.0, 2.0, 5.0],
        ["a", "", "neg", -1.0, 2.0, 5.0],
        ["a", "", "nan", "nan", 2.0, 5.0],
        ["a", "", "str", "abc", 2.0, 5.0],
        ["a", "", "badt", 1.0, 2.0, "x"],
        ["a", "", "short", 1.0],
        "not a row",
        ["a", 7, "m", 1.0, 2.0, 5.0],
    ]
    path.write_bytes(orjson.dumps({"format": "model-manager-state", "version": 1, "cells": rows}))
    cells, bad = state_file.read(path)
    assert bad == 7
    assert {m: (c.s, c.f, c.t) for m, c in cells[Table("a")].items()} == {"good": (1.0, 2.0, 5.0)}


def test_write_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b"old")
    inode_before = os.stat(path).st_ino
    state_file.write(path, [("a", "", "m", 1.0, 2.0, 3.0)])
    assert os.stat(path).st_ino != inode_before  # a new file renamed over, not rewritten
    cells, bad = state_file.read(path)
    cell = cells[Table("a")]["m"]
    assert (cell.s, cell.f, cell.t, bad) == (1.0, 2.0, 3.0, 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_a_missing_file_is_empty_state(tmp_path: Path) -> None:
    assert state_file.read(tmp_path / "absent.json") == ({}, 0)
