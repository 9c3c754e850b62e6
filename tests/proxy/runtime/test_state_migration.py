"""JSON state files (posteriors and tracking) found on first start are imported into the
SQLite database once, then renamed ``*.migrated``."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from support.embedded_db import integrity

from policies.base import ALL_PROMPTS, Evidence, Table
from proxy.config.settings import Config, parse_config
from proxy.runtime.state import open_state
from proxy.tracking import tracking_file
from proxy.tracking.backend import WorkflowRaw
from proxy.tracking.memory_state import Expiring, TrackingState
from proxy.tracking.records import DecisionRecord
from storage.embedded import state_file

ENTRY = {"model_name": "m", "litellm_params": {"model": "openai/m", "api_key": "k"}}
NOW = time.time()
MINUTE = int(NOW // 60)
RECORD = DecisionRecord("mm-1", "a", "", ("m",), "m", "wf-1", 0.5, 0.1, 0.002, 0.9, 0.7)


def _config(path: Path) -> Config:
    config: dict[str, Any] = {"model_list": [ENTRY], "server": {"state_file": str(path)}}
    return parse_config({**config, "router": {"half_life_s": None}})


def _write_json(path: Path, successes: float = 3.0) -> None:
    state_file.write(path, [("a", "", "m", successes, 1.0, NOW), ("a", "code", "m", 0.5, 0.5, NOW)])
    tracked = TrackingState(
        stats={"a": {"m|calls": 4.0, "m|successes": 3.0}},
        workflows={"wf-1": Expiring(NOW + 3600, WorkflowRaw(
            {"first_seen": repr(NOW - 5), "last_seen": repr(NOW)}, {"requests": 4.0}, ["mm-1", "mm-2"],
        ))},
        recent={"a": {"wf-1": NOW}, None: {"wf-1": NOW}},
        decisions={"mm-1": (NOW + 3600, RECORD)},
        timeline={"a": {MINUTE - 1: {"m|calls": 3.0}, MINUTE: {"m|calls": 1.0, "m|ctx.code": 1.0}}},
        recent_decisions={"a": [{"id": "mm-2", "at": NOW}, {"id": "mm-1", "at": NOW - 5}]},
    )
    tracking_file.path_for(path).write_bytes(tracking_file.encode(tracked))


def json_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("state.db"))


@pytest.fixture(autouse=True)
def _embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)


async def test_json_state_is_imported_once_and_renamed(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    _write_json(path)
    state = open_state(_config(path), time.time)
    assert json_files(tmp_path) == ["state.json.migrated", "state.tracking.json.migrated"]
    assert (tmp_path / "state.db").exists()
    assert await state.posteriors.dump() == {"a": {ALL_PROMPTS: {"m": Evidence(3.0, 1.0)},
                                                   "code": {"m": Evidence(0.5, 0.5)}}}
    assert await state.tracking.stats(["a"]) == {"a": {"m|calls": 4.0, "m|successes": 3.0}}
    flow = await state.tracking.workflow("wf-1")
    assert flow is not None and flow.counts == {"requests": 4.0} and flow.request_ids == ["mm-1", "mm-2"]
    assert flow.meta == {"first_seen": repr(NOW - 5), "last_seen": repr(NOW)}
    assert await state.tracking.recent_workflows(None, 10) == [("wf-1", NOW)]
    assert await state.tracking.decision("mm-1") == RECORD
    assert await state.tracking.timeline(["a"], NOW - 60) == {
        "a": {MINUTE - 1: {"m|calls": 3.0}, MINUTE: {"m|calls": 1.0, "m|ctx.code": 1.0}}
    }
    assert [e["id"] for e in await state.tracking.recent_decisions("a", 10)] == ["mm-2", "mm-1"]
    await state.close()

    shutil.copy(tmp_path / "state.json.migrated", path)  # the same file again: not added twice
    shutil.copy(tmp_path / "state.tracking.json.migrated", tracking_file.path_for(path))
    again = open_state(_config(path), time.time)
    assert (await again.posteriors.load([Table("a")], ["m"]))[Table("a")]["m"] == Evidence(3.0, 1.0)
    assert (await again.tracking.stats(["a"]))["a"]["m|calls"] == 4.0
    await again.close()
    assert integrity(tmp_path / "state.db") == "ok"


async def test_another_json_file_later_is_added(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    _write_json(path)
    await open_state(_config(path), time.time).close()
    _write_json(path, successes=7.0)
    state = open_state(_config(path), time.time)
    assert (await state.posteriors.load([Table("a")], ["m"]))[Table("a")]["m"] == Evidence(10.0, 2.0)
    assert (await state.tracking.stats(["a"]))["a"]["m|calls"] == 8.0
    await state.close()


async def test_an_unusable_json_file_is_moved_aside_and_the_rest_imported(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    _write_json(path)
    path.write_bytes(b"{not json")
    state = open_state(_config(path), time.time)
    names = json_files(tmp_path)
    assert names[0].startswith("state.json.corrupt-") and names[1:] == ["state.tracking.json.migrated"]
    assert await state.posteriors.dump() == {}
    assert (await state.tracking.stats(["a"]))["a"]["m|calls"] == 4.0
    await state.close()
