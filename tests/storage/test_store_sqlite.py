"""SqliteStore on its own: restart, a write refused while another process holds the write
lock (kept and retried), an unusable database file, corrupt cells, other processes' writes."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

import pytest
from support.clocks import FakeClock

from policies.base import Delta, Evidence, Table
from storage.embedded.database import Database
from storage.embedded.sqlite_store import SqliteStore

AGENT = Table("agent-1")


async def test_state_survives_restart_exactly(tmp_path: Path) -> None:
    clock = FakeClock(100.0)
    store = SqliteStore(Database(tmp_path / "s.db"), half_life_s=10.0, clock=clock)
    await store.apply([Delta(AGENT, "m1", 0.1, 0.7)])
    clock.now = 105.0
    await store.apply([Delta(AGENT, "m1", 1.0, 0.0)])  # buffered with the first: decayed together
    await store.close()
    clock.now = 115.0
    again = SqliteStore(Database(tmp_path / "s.db"), half_life_s=10.0, clock=clock)
    got = (await again.load([AGENT], ["m1"]))[AGENT]["m1"]
    assert got.successes == pytest.approx(0.1 * 0.5 ** 1.5 + 1.0 * 0.5)
    assert got.failures == pytest.approx(0.7 * 0.5 ** 1.5)
    await again.close()


async def test_a_refused_write_is_kept_and_retried(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(Database(path, busy_timeout_ms=20))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    await store.apply([Delta(AGENT, "m", 1.0, 0.0)])
    assert await store.flush() is False
    assert store.counters()["write_errors"] == 1 and store.counters()["pending"] == 1
    await store.apply([Delta(AGENT, "m", 2.0, 0.0)])
    assert store.load_now([AGENT], ["m"])[AGENT]["m"] == Evidence(3.0, 0.0)  # reads are not held up
    other.execute("COMMIT")
    other.close()
    assert await store.flush() is True and store.counters()["pending"] == 0
    await store.close()
    reader = SqliteStore(Database(path))
    assert reader.load_now([AGENT], ["m"])[AGENT]["m"] == Evidence(3.0, 0.0)
    await reader.close()


async def test_an_unusable_database_is_moved_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"\x00\xff not a database" * 100)
    with caplog.at_level(logging.WARNING, logger="model_manager.store"):
        store = SqliteStore(Database(path))
    assert "unusable" in caplog.text
    aside = [name for name in os.listdir(tmp_path) if name.startswith("s.db.corrupt-")]
    assert [(tmp_path / name).read_bytes() for name in aside] == [b"\x00\xff not a database" * 100]
    await store.apply([Delta(AGENT, "m", 1.0, 0.0)])
    await store.close()
    again = SqliteStore(Database(path))
    assert again.load_now([AGENT], ["m"])[AGENT]["m"] == Evidence(1.0, 0.0)
    await again.close()


async def test_corrupt_cells_read_as_empty_and_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Database(path).close()
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO posterior (scope, context, model, s, f, t, seq) VALUES (?, '', ?, ?, ?, ?, 1)",
            [("a", "good", 1.0, 2.0, 5.0), ("a", "neg", -1.0, 2.0, 5.0), ("a", "str", "abc", 2.0, 5.0),
             ("a", "badt", 1.0, 2.0, "x")],
        )
    store = SqliteStore(Database(path))
    assert store.corrupt_reads == 3
    snap = store.load_now([Table("a")], ["good", "neg", "str", "badt"])
    empty = Evidence()
    assert snap[Table("a")] == {"good": Evidence(1, 2), "neg": empty, "str": empty, "badt": empty}
    await store.apply([Delta(Table("a"), "str", 1.0, 0.0)])  # a corrupt stored cell is repaired on write
    await store.close()
    again = SqliteStore(Database(path))
    assert again.load_now([Table("a")], ["str"])[Table("a")]["str"] == Evidence(1.0, 0.0)
    await again.close()


async def test_another_process_writes_arrive_on_the_next_flush(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    one, two = SqliteStore(Database(path)), SqliteStore(Database(path))
    await one.apply([Delta(AGENT, "m", 1.0, 0.0)])
    await two.apply([Delta(AGENT, "m", 0.0, 1.0)])
    assert one.load_now([AGENT], ["m"])[AGENT]["m"] == Evidence(1.0, 0.0)  # not written yet
    assert await one.flush() and await two.flush()
    assert two.load_now([AGENT], ["m"])[AGENT]["m"] == Evidence(1.0, 1.0)
    await two.apply([Delta(AGENT, "m", 5.0, 0.0)])  # buffered while one reads: stays on top
    assert await one.flush()
    assert one.load_now([AGENT], ["m"])[AGENT]["m"] == Evidence(1.0, 1.0)
    assert two.load_now([AGENT], ["m"])[AGENT]["m"] == Evidence(6.0, 1.0)
    assert await two.flush() and await one.flush()
    assert one.load_now([AGENT], ["m"])[AGENT]["m"] == Evidence(6.0, 1.0)
    await one.close()
    await two.close()
