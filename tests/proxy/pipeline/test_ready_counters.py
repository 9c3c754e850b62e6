"""write_counters reports the storage parts' counters next to the learner's."""

from __future__ import annotations

import random

from proxy.config.settings import parse_config
from proxy.pipeline.learning import Learner
from proxy.pipeline.ready_counters import write_counters
from proxy.pipeline.router import Router
from storage.embedded.store import MemoryStore

CONFIG = {"model_list": [{"model_name": "m", "litellm_params": {"model": "openai/m", "api_key": "k"}}]}


def test_write_counters_keeps_storage_parts_and_adds_the_learner() -> None:
    learner = Learner(Router(parse_config(CONFIG)), MemoryStore(), random.Random(0))
    storage = {"store": {"pending": 3, "dropped_updates": 1}, "tracking": {}}
    assert write_counters(storage, learner) == {
        "store": {"pending": 3, "dropped_updates": 1},
        "tracking": {},
        "learner": {"submitted": 0, "recorded": 0, "failed_writes": 0, "hook_failures": 0},
    }
