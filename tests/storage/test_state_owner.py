"""Two real proxy processes on one embedded state file: the first owns it, the second
serves and learns in memory, says so, and never overwrites the owner's saved state."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import openai
import yaml
from support.servers import FakeUpstream, ProxyProcess
from support.tracking_support import MESSAGES, config_dict

from policies.base import Table
from storage.embedded.store import MemoryStore


def serve(process: ProxyProcess, agent: str, requests: int) -> None:
    """``requests`` completions as ``agent``, then wait until the process learnt them."""
    client = openai.OpenAI(
        base_url=f"{process.url}/v1", api_key="unused", max_retries=0, default_headers={"X-Agent": agent}
    )
    with client:
        for _ in range(requests):
            client.chat.completions.create(model="auto", messages=MESSAGES)
    deadline = time.monotonic() + 20
    while httpx.get(f"{process.url}/ready", timeout=5).json()["writes"]["learner"]["recorded"] < requests:
        assert time.monotonic() < deadline, process.output()[-2000:]
        time.sleep(0.05)


def test_the_second_process_does_not_overwrite_the_owners_state(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    router = {"policy": "thompson", "policy_options": {"choice_discount": 0.0}}  # totals count answers
    config = config_dict(fake_upstream, router=router, server={"state_file": str(state)})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {"REDIS_URL": ""}
    with ProxyProcess(path, env=env, cwd=tmp_path) as owner, \
            ProxyProcess(path, env=env, cwd=tmp_path) as second:
        serve(owner, "first", 3)
        serve(second, "second", 4)
        assert "owned by another running process" in second.output()
        assert "owned by another" not in owner.output()
        owner.stop()  # saves; then the second stops last: were it a writer, it would win
        second.stop()
    saved = MemoryStore(state_file=state)
    tables = [Table("first"), Table("second")]
    found = saved.load_now(tables, ["m1", "m2"])
    assert sum(e.total for e in found[Table("first")].values()) == 3
    assert sum(e.total for e in found[Table("second")].values()) == 0
