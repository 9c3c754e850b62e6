"""open_state chooses Redis when a URL is configured, else the embedded store; what one
State wrote, another State on the same storage reads back as the same evidence."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from support.redis_server import free_port
from support.redis_targets import RedisTarget

from policies.base import ALL_PROMPTS, Delta, Evidence, Table
from proxy.config.reader import ConfigError
from proxy.config.settings import Config, parse_config
from proxy.runtime.state import open_state
from proxy.tracking import tracking_file

ENTRY = {"model_name": "m", "litellm_params": {"model": "openai/m", "api_key": "k", "rpm": 5}}
DELTAS = [Delta(Table("t"), "m", 1.0, 0.0), Delta(Table("t", "code"), "m", 0.25, 0.75)]


def _config(**sections: Any) -> Config:
    return parse_config({"model_list": [ENTRY], **sections})


async def test_redis_url_gives_a_shared_state(
    redis_target: RedisTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a single Redis and on a Cluster (``redis.cluster``); REDIS_URL wins over ``redis.url``."""
    monkeypatch.setenv("REDIS_URL", redis_target.url)
    redis = redis_target.config(url=f"redis://127.0.0.1:{free_port()}/0", prefix="x")
    config = _config(redis=redis, router={"half_life_s": None})
    writer, reader = open_state(config, time.time), open_state(config, time.time)
    assert writer.shared and writer.redis is not None and writer.redis.prefix == "x"
    assert writer.state_file is None and writer.usage is not None  # m has an rpm limit
    assert writer.cooldowns is not None
    await writer.start()
    await writer.posteriors.apply(DELTAS)
    assert await writer.posteriors.flush()
    assert await reader.posteriors.dump() == {"t": {ALL_PROMPTS: {"m": Evidence(1.0, 0.0)},
                                                    "code": {"m": Evidence(0.25, 0.75)}}}
    assert writer.counters()["store"]["pending"] == 0
    await writer.close()
    await reader.close()


async def test_no_url_gives_the_embedded_database_shared_by_two_states(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    path = tmp_path / "s.json"
    config = _config(server={"state_file": str(path)}, router={"half_life_s": None})
    one, two = open_state(config, time.time), open_state(config, time.time)
    assert one.shared and one.redis is None and one.usage is None
    assert one.state_file == two.state_file == tmp_path / "s.db"
    await one.start()
    await two.start()
    await one.posteriors.apply(DELTAS)
    await two.posteriors.apply(DELTAS)
    assert await one.posteriors.flush() and await two.posteriors.flush() and await one.posteriors.flush()
    both = {"t": {ALL_PROMPTS: {"m": Evidence(2.0, 0.0)}, "code": {"m": Evidence(0.5, 1.5)}}}
    assert await one.posteriors.dump() == both == await two.posteriors.dump()
    await one.close()
    await two.close()
    again = open_state(config, time.time)
    assert await again.posteriors.load([Table("t"), Table("t", "code")], ["m"]) == {
        Table("t"): {"m": Evidence(2.0, 0.0)}, Table("t", "code"): {"m": Evidence(0.5, 1.5)},
    }
    assert not path.exists() and not tracking_file.path_for(path).exists()  # no JSON written
    await again.close()


@pytest.mark.parametrize("name", ["state.db", "state.sqlite", "state.sqlite3"])
async def test_a_state_file_named_like_a_database_is_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    state = open_state(_config(server={"state_file": str(tmp_path / name)}), time.time)
    assert state.state_file == tmp_path / name
    await state.close()
    assert os.listdir(tmp_path) == [name]


def test_redis_cluster_must_be_a_boolean() -> None:
    with pytest.raises(ConfigError, match=r"redis\.cluster: must be true or false"):
        _config(redis={"url": "redis://127.0.0.1:6379/0", "cluster": "yes"})
