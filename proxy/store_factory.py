"""Which PosteriorStore the proxy runs on, from config: Redis when a URL is given, else in-process."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from proxy.config.settings import Config
from storage.factory import Store, make_store

log = logging.getLogger("model_manager.store")


def build_store(config: Config, clock: Callable[[], float]) -> Store:
    """RedisStore for REDIS_URL or ``redis.url``; otherwise the embedded MemoryStore."""
    url = config.redis_url()
    if url:
        log.info("state: Redis at %s (shared by every replica)", _without_password(url))
    return make_store(
        redis_url=url,
        prefix=config.redis.prefix,
        half_life_s=config.router.half_life_s,
        clock=clock,
        state_file=Path(config.server.state_file),
        socket_timeout=config.redis.timeout_s,
        fresh_s=config.redis.read_cache_s,
    )


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest
