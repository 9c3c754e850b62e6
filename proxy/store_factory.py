"""Which PosteriorStore the proxy runs on: Redis when a URL is given, else in-process."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from policies.base import PosteriorStore
from policies.memory_store import MemoryStore
from policies.redis_store import RedisStore
from proxy.config import Config

log = logging.getLogger("model_manager.store")


def build_store(config: Config, clock: Callable[[], float]) -> PosteriorStore:
    """RedisStore for REDIS_URL or ``redis.url``; otherwise the embedded MemoryStore."""
    url = config.redis_url()
    half_life = config.router.half_life_s
    if url:
        log.info("state: Redis at %s (shared by every replica)", _without_password(url))
        return RedisStore.from_url(
            url,
            socket_timeout=config.redis.timeout_s,
            connect_timeout=config.redis.timeout_s,
            prefix=config.redis.prefix,
            half_life_s=half_life,
            clock=clock,
        )
    return MemoryStore(half_life_s=half_life, clock=clock, state_file=Path(config.server.state_file))


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest
