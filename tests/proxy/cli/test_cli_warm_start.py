"""``model-manager warm-start`` end to end: the real CLI writing to the embedded state file
and to a real redis-server, and a real proxy routing from that evidence at once."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from support.embedded_db import saved_store
from support.paths import REPO
from support.redis_server import free_port
from support.servers import FakeUpstream
from support.tracking_support import Starter, backend, chat, config_dict, redis_target_of, start_proxy

from policies.base import Table
from proxy.cli.main import main
from storage.embedded.database import database_path

__all__ = ["backend", "start_proxy"]

PROMPT = "Say hello"  # the prompt tracking_support.chat sends: same context cell


def write_log(path: Path, extra: tuple[list[object], ...] = ()) -> Path:
    """50 calls each: m1 always wrong, m2 always right, for agent "support"."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt_id", "task", "prompt", "model", "quality", "cost_usd", "latency_s"])
        for i in range(50):
            writer.writerow([f"a{i}", "support", PROMPT, "m1", "0", "", ""])
            writer.writerow([f"b{i}", "support", PROMPT, "m2", "1", "", ""])
        writer.writerows(extra)
    return path


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _no_redis_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)


def embedded_config(tmp_path: Path, upstream: FakeUpstream, state: Path) -> Path:
    """A config on the fake upstream, thompson policy, embedded store saving to ``state``."""
    config = config_dict(upstream, router={"policy": "thompson"}, server={"state_file": str(state)})
    return write_config(tmp_path / "c.yaml", config)


def warm_start(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["warm-start", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_embedded_store_gets_the_evidence_and_a_dry_run_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_upstream: FakeUpstream
) -> None:
    state = tmp_path / "state.json"
    config = embedded_config(tmp_path, fake_upstream, state)
    log = write_log(tmp_path / "log.csv", (
        ["x1", "support", PROMPT, "not-configured", "1", "", ""],
        ["x2", "bad agent!", PROMPT, "m1", "1", "", ""],
    ))
    code, out = warm_start(capsys, "--config", str(config), "--data", str(log), "--dry-run")
    assert code == 0, out
    assert "100 rows for 1 agent(s) (support)" in out
    assert "1 unknown model, 1 bad agent name" in out
    assert not database_path(state).exists()
    code, out = warm_start(capsys, "--config", str(config), "--data", str(log))
    assert code == 0, out
    table = Table("support")
    found = saved_store(state).load_now([table], ["m1", "m2"])[table]
    # default weights: quality 0.6, cost 0.2 (unknown: neutral 1), latency 0.2 (not logged: left out)
    assert (found["m1"].successes, found["m1"].failures) == pytest.approx((50 * 0.25, 50 * 0.75))
    assert (found["m2"].successes, found["m2"].failures) == pytest.approx((50.0, 0.0))


def test_strength_caps_the_evidence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_upstream: FakeUpstream
) -> None:
    state = tmp_path / "state.json"
    config = embedded_config(tmp_path, fake_upstream, state)
    log = write_log(tmp_path / "log.csv")
    code, out = warm_start(capsys, "--config", str(config), "--data", str(log), "--strength", "10")
    assert code == 0, out
    table = Table("support")
    found = saved_store(state).load_now([table], ["m2"])[table]["m2"]
    assert found.total == pytest.approx(10.0)


def test_a_running_proxy_sees_what_warm_start_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_upstream: FakeUpstream
) -> None:
    state = tmp_path / "state.json"
    config = embedded_config(tmp_path, fake_upstream, state)
    running = saved_store(state)  # what a serving proxy holds: its mirror is empty
    table = Table("support")
    assert running.load_now([table], ["m2"])[table]["m2"].total == 0
    code, out = warm_start(capsys, "--config", str(config), "--data", str(write_log(tmp_path / "l.csv")))
    assert code == 0 and f"written to {database_path(state)}" in out, out
    assert asyncio.run(running.flush())  # its next tick reads what other processes wrote
    assert running.load_now([table], ["m2"])[table]["m2"].total == pytest.approx(50.0)
    asyncio.run(running.close())


def test_the_same_log_is_not_imported_twice_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_upstream: FakeUpstream
) -> None:
    state = tmp_path / "state.json"
    config = embedded_config(tmp_path, fake_upstream, state)
    log = write_log(tmp_path / "log.csv")
    args = ("--config", str(config), "--data", str(log))
    assert warm_start(capsys, *args)[0] == 0
    code, out = warm_start(capsys, *args)
    assert code == 1 and "already imported with these options" in out and str(log) in out
    assert warm_start(capsys, *args, "--strength", "20")[0] == 0  # other options: another import
    assert warm_start(capsys, *args, "--force")[0] == 0
    table = Table("support")
    found = saved_store(state).load_now([table], ["m2"])[table]["m2"]
    assert found.total == pytest.approx(50 + 20 + 50)


def test_an_unrecordable_import_is_still_written_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_upstream: FakeUpstream
) -> None:
    state = tmp_path / "state.json"
    config = embedded_config(tmp_path, fake_upstream, state)
    (tmp_path / "state.json.warm-starts.json").mkdir()  # a directory: the record cannot be written
    code, out = warm_start(capsys, "--config", str(config), "--data", str(write_log(tmp_path / "l.csv")))
    assert code == 0 and "could not be recorded" in out
    assert database_path(state).exists()


@pytest.mark.parametrize(("args", "message"), [
    (("--data", "absent.csv"), "cannot open"),
    (("--strength", "0"), "strength must be > 0"),
])
def test_bad_input_exits_2(
    *, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    fake_upstream: FakeUpstream, args: tuple[str, ...], message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    config = embedded_config(tmp_path, fake_upstream, tmp_path / "s.json")
    log = write_log(tmp_path / "log.csv")
    code, out = warm_start(capsys, "--config", str(config), "--data", str(log), *args)
    assert code == 2 and message in out
    assert not (tmp_path / "s.json").exists()


def test_redis_down_exits_1_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_upstream: FakeUpstream
) -> None:
    config = write_config(tmp_path / "c.yaml", config_dict(
        fake_upstream, router={"policy": "thompson"},
        redis={"url": f"redis://127.0.0.1:{free_port()}/0", "timeout_s": 0.2},
    ))
    code, out = warm_start(capsys, "--config", str(config), "--data", str(write_log(tmp_path / "l.csv")))
    assert code == 1 and "Redis does not answer" in out


@pytest.mark.parametrize("backend", ["redis", "redis-cluster"])
def test_a_proxy_on_warm_started_redis_routes_to_the_logged_best_model_from_the_first_call(
    *, tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_upstream: FakeUpstream,
    start_proxy: Starter, request: pytest.FixtureRequest, backend: str,
) -> None:
    target = redis_target_of(request, backend)
    assert target is not None
    proxy_config = config_dict(fake_upstream, router={"policy": "thompson", "exploration_rate": 0.0})
    cold = start_proxy(proxy_config)
    with cold.client("support") as client:
        cold_models = [chat(client)[1] for _ in range(10)]
    assert "m1" in cold_models  # cold: each model is tried (min_tries) before the posterior rules
    cold.wait_recorded(10)
    target.flush()

    config = write_config(tmp_path / "c.yaml", {**proxy_config, "redis": target.config()})
    log = str(write_log(tmp_path / "l.csv"))
    code, out = warm_start(capsys, "--config", str(config), "--data", log)
    assert code == 0 and "written to Redis" in out, out
    code, out = warm_start(capsys, "--config", str(config), "--data", log)
    assert code == 1 and "already imported" in out  # recorded in Redis, not counted twice
    warm = start_proxy(proxy_config)
    with warm.client("support") as client:
        warm_models = [chat(client)[1] for _ in range(10)]
    assert warm_models == ["m2"] * 10
    code = main(["stats", "--config", str(config), "--agent", "support", "--json"])
    rows = {row["model"]: row for row in orjson.loads(capsys.readouterr().out)}
    assert code == 0
    assert rows["m2"]["alpha"] >= 51.0 and rows["m1"]["beta"] >= 1 + 50 * 0.75


def test_the_shipped_example_log_seeds_the_shipped_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """README's warm-start example: every row is usable with config.yaml's models."""
    repo = REPO
    shipped = yaml.safe_load((repo / "config.yaml").read_text(encoding="utf-8"))
    shipped.setdefault("server", {})["state_file"] = str(tmp_path / "state.json")
    config = write_config(tmp_path / "c.yaml", shipped)
    code, out = warm_start(capsys, "--config", str(config), "--data", str(repo / "examples" / "demo-log.csv"))
    assert code == 0, out
    assert "72 rows for 2 agent(s) (demo, support)" in out and "skipped: 0 unknown model, 0 bad" in out
    table = Table("demo")
    found = saved_store(tmp_path / "state.json").load_now([table], ["sim-fast", "sim-smart"])
    assert found[table]["sim-smart"].total == pytest.approx(12.0)
