"""Choosing the store: RedisStore when a Redis URL is configured, else MemoryStore.

Both have ``await start()`` (background task: periodic save / buffered-write retry) and
``await close()`` (final save / flush, release). Call them in the app's lifespan.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from policies.base import PosteriorStore
from storage.embedded.store import MemoryStore
from storage.redis.store import RedisStore

Store = MemoryStore | RedisStore


def make_store(
    *,
    redis_url: str | None = None,
    prefix: str = "mm",
    half_life_s: float | None = None,
    clock: Callable[[], float] = time.time,
    state_file: Path | None = None,
    save_interval_s: float = 30.0,
    socket_timeout: float = 0.25,
    buffer_limit: int = 10_000,
    fresh_s: float = 0.0,
) -> Store:
    """The configured store (not started). ``state_file`` only applies without Redis."""
    if redis_url:
        return RedisStore.from_url(
            redis_url,
            socket_timeout=socket_timeout,
            connect_timeout=socket_timeout,
            prefix=prefix,
            half_life_s=half_life_s,
            clock=clock,
            buffer_limit=buffer_limit,
            fresh_s=fresh_s,
        )
    return MemoryStore(
        half_life_s=half_life_s, clock=clock, state_file=state_file, save_interval_s=save_interval_s
    )


def as_posterior_store(store: Store) -> PosteriorStore:
    """``store`` typed as the protocol (mypy checks both classes conform)."""
    return store
