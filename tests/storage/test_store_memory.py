"""MemoryStore's state file: restore, periodic and final saves, corruption, atomicity."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from policies.base import POOLED, Delta, Evidence, Table
from storage.embedded import state_file
from storage.embedded.state_lock import StateLock
from storage.embedded.store import MemoryStore

try:
    from support.clocks import FakeClock
except ImportError:
    from tests.store_helpers import FakeClock

AGENT = Table("agent-1")
POOL = Table(POOLED, "code")


def names(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


async def test_state_survives_restart_exactly(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    clock = FakeClock(100.0)
    store = MemoryStore(half_life_s=10.0, clock=clock, state_file=path)
    await store.apply([Delta(AGENT, "m1", 0.1, 0.7), Delta(POOL, "a:b", 8.0, 4.0)])
    await store.close()
    clock.now = 110.0
    again = MemoryStore(half_life_s=10.0, clock=clock, state_file=path)
    snap = await again.load([AGENT, POOL], ["m1", "a:b"])
    assert snap[AGENT] == {"m1": Evidence(0.1 * 0.5, 0.7 * 0.5), "a:b": Evidence()}
    assert snap[POOL] == {"m1": Evidence(), "a:b": Evidence(4.0, 2.0)}


async def test_periodic_save_after_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "state.json"
    store = MemoryStore(state_file=path, save_interval_s=0.02)
    with caplog.at_level(logging.INFO, logger="model_manager.store"):
        await store.start()
    assert any("single-process" in r.getMessage() for r in caplog.records)
    await store.apply([Delta(AGENT, "m", 2.0, 1.0)])
    for _ in range(100):
        if path.exists():
            break
        await asyncio.sleep(0.01)
    cells, bad = state_file.read(path)
    assert bad == 0
    assert (cells[AGENT]["m"].s, cells[AGENT]["m"].f) == (2.0, 1.0)
    await store.close()


async def test_no_state_file_means_nothing_written(tmp_path: Path) -> None:
    store = MemoryStore()
    await store.start()
    await store.apply([Delta(AGENT, "m", 1.0, 0.0)])
    assert await store.save() is False
    await store.close()
    assert names(tmp_path) == []


@pytest.mark.parametrize(
    "content",
    [b"\x00\xff garbage", b"{not json", b"[]", b'{"format": "other", "version": 1, "cells": []}',
     b'{"format": "model-manager-state", "version": 1, "cells": {}}'],
)
async def test_corrupt_state_file_is_moved_aside(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="model_manager.store"):
        store = MemoryStore(state_file=path)
    assert any("unusable" in r.getMessage() for r in caplog.records)
    assert (await store.load([AGENT], ["m"]))[AGENT]["m"] == Evidence()
    aside = [n for n in names(tmp_path) if n.startswith("state.json.corrupt-")]
    assert [(tmp_path / n).read_bytes() for n in aside] == [content]
    await store.apply([Delta(AGENT, "m", 1.0, 0.0)])
    await store.close()
    assert (await MemoryStore(state_file=path).load([AGENT], ["m"]))[AGENT]["m"] == Evidence(1, 0)


async def test_corrupt_rows_are_skipped_and_counted(tmp_path: Path) -> None:
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
    store = MemoryStore(state_file=path)
    assert store.corrupt_reads == 7
    snap = await store.load([Table("a")], ["good", "neg", "nan"])
    assert snap[Table("a")] == {"good": Evidence(1, 2), "neg": Evidence(), "nan": Evidence()}


async def test_failed_save_keeps_old_file_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    store = MemoryStore(state_file=path)
    await store.apply([Delta(AGENT, "m", 1.0, 0.0)])
    assert await store.save() is True
    before = path.read_bytes()

    def broken_replace(src: str, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(state_file.os, "replace", broken_replace)
    await store.apply([Delta(AGENT, "m", 5.0, 0.0)])
    assert await store.save() is False
    assert path.read_bytes() == before
    assert names(tmp_path) == ["state.json", "state.json.lock"]  # no temp file left
    monkeypatch.undo()
    await store.close()  # still dirty: the final save writes the new value
    assert (await MemoryStore(state_file=path).load([AGENT], ["m"]))[AGENT]["m"] == Evidence(6, 0)


async def test_unwritable_directory_does_not_raise(tmp_path: Path) -> None:
    store = MemoryStore(state_file=tmp_path / "missing-dir" / "state.json")
    await store.apply([Delta(AGENT, "m", 1.0, 0.0)])
    assert await store.save() is False
    await store.close()


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


def test_sync_api_for_offline_use() -> None:
    clock = FakeClock(0.0)
    store = MemoryStore(half_life_s=1.0, clock=clock)
    for _ in range(4):
        store.apply_now([Delta(AGENT, "m", 1.0, 0.0)])
    clock.now = 2.0
    assert store.load_now([AGENT], ["m"])[AGENT]["m"] == Evidence(1.0, 0.0)


async def test_one_owner_per_state_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A second store on the same file (another worker, a CLI) reads it but never writes it."""
    path = tmp_path / "state.json"
    owner = MemoryStore(state_file=path)
    await owner.apply([Delta(AGENT, "m", 1.0, 0.0)])
    assert await owner.save() is True
    second = MemoryStore(state_file=path)
    assert "owned by another" not in caplog.text  # a reader (a CLI) is not warned...
    await second.start()
    assert "owned by another running process" in caplog.text  # ...a serving process is
    assert (await second.load([AGENT], ["m"]))[AGENT]["m"] == Evidence(1, 0)  # read at start
    assert second.state_file is None and owner.state_file == path
    await second.apply([Delta(AGENT, "m", 50.0, 0.0)])
    assert await second.save() is False
    await second.close()
    await owner.apply([Delta(AGENT, "m", 1.0, 0.0)])
    await owner.close()
    reopened = MemoryStore(state_file=path)
    assert reopened.state_file == path  # the owner closed: the file is free again
    assert (await reopened.load([AGENT], ["m"]))[AGENT]["m"] == Evidence(2, 0)
    await reopened.close()


def test_the_lock_dies_with_its_process(tmp_path: Path) -> None:
    """A killed owner leaves no stale lock (flock is released by the kernel)."""
    path = tmp_path / "state.json"
    code = (
        "import sys, time; from pathlib import Path; from storage.embedded.state_lock import StateLock; "
        f"assert StateLock(Path({str(path)!r})).acquire(); print('locked', flush=True); time.sleep(60)"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "locked"
        assert StateLock(path).acquire() is False
    finally:
        child.kill()
        child.wait(timeout=10)
    lock = StateLock(path)
    assert lock.acquire() is True
    lock.release()
