"""The config file as every command reads it: wildcard entries expanded from their upstream's
``GET /v1/models`` (proxy.config.discovery), and ``MODEL_MANAGER_STATE_FILE`` from the environment,
when set, winning over ``server.state_file`` (as ``REDIS_URL`` wins over ``redis.url``)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from proxy.config.discovery import expand_wildcards
from proxy.config.settings import Config, load_config

STATE_FILE_ENV = "MODEL_MANAGER_STATE_FILE"


def load(path: str | Path) -> Config:
    """``load_config(path)``, with the state file from the environment when it names one."""
    config = load_config(path, prepare=expand_wildcards)
    state_file = os.environ.get(STATE_FILE_ENV)
    if not state_file:
        return config
    server = dataclasses.replace(config.server, state_file=os.path.abspath(state_file))
    return dataclasses.replace(config, server=server)
