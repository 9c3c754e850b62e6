"""Where learning and bookkeeping live, chosen once: Redis (shared by every replica) or embedded.

``open_state(config, clock)`` picks Redis when a URL is configured (``REDIS_URL`` or
``redis.url``), else the embedded SQLite database of ``server.state_file``
(storage.embedded.database.database_path: ``state.json`` -> ``state.db``), shared by the
processes of one machine; JSON state files found next to it are imported on first start
(proxy.tracking.json_migration). The State holds the posterior store, the tracking backend on the
same storage, and (Redis only) the shared rpm/tpm usage and 429 cooldowns; ``start``/``close``
run them all in order. ``embedded_state`` runs on a given in-process MemoryStore (tests, tools): nothing
persisted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proxy.config.settings import Config
from proxy.tracking.backend import TrackingBackend
from proxy.tracking.json_migration import migrate_json
from proxy.tracking.memory import MemoryTracking
from proxy.tracking.redis_backend import RedisTracking
from proxy.tracking.sqlite_backend import SqliteTracking
from storage.embedded.database import Database, database_path
from storage.embedded.sqlite_store import SqliteStore
from storage.embedded.store import MemoryStore
from storage.protocols import Store
from storage.redis.client import Client
from storage.redis.cooldown_sync import SharedCooldowns
from storage.redis.store import RedisStore
from storage.redis.usage_sync import SharedUsage

log = logging.getLogger("model_manager.store")


@dataclass(frozen=True, slots=True)
class RedisHome:
    """The shared Redis: its client (closed by the posterior store) and key prefix."""

    client: Client
    prefix: str


@dataclass(frozen=True, slots=True)
class State:
    """The posterior store, the tracking backend, the shared usage and cooldowns, on one storage.

    ``redis`` is set when the storage is Redis (shared by every replica); ``state_file``
    (the SQLite database) when it is the embedded database (shared by the processes of this
    machine); neither for a MemoryStore in process memory.
    """

    posteriors: Store
    tracking: TrackingBackend
    usage: SharedUsage | None = None
    cooldowns: SharedCooldowns | None = None
    redis: RedisHome | None = None
    state_file: Path | None = None

    @property
    def shared(self) -> bool:
        """Whether other processes see the same state (Redis, or the embedded database)."""
        return self.redis is not None or self.state_file is not None

    async def start(self) -> None:
        await self.posteriors.start()
        await self.tracking.start()
        if self.usage is not None:
            await self.usage.start()
        if self.cooldowns is not None:
            await self.cooldowns.start()

    async def close(self) -> None:
        """Cooldowns, usage and tracking first: they write through the client the store closes."""
        if self.cooldowns is not None:
            await self.cooldowns.close()
        if self.usage is not None:
            await self.usage.close()
        await self.tracking.close()
        await self.posteriors.close()

    def counters(self) -> dict[str, dict[str, int]]:
        """``{"store": {...}, "tracking": {...}}`` write-path counters."""
        return {"store": dict(self.posteriors.counters()), "tracking": dict(self.tracking.counters())}


def open_state(config: Config, clock: Callable[[], float]) -> State:
    """Redis when a URL is configured, else embedded (not started)."""
    url = config.redis_url()
    if not url:
        return sqlite_state(config, clock, Path(config.server.state_file))
    kind = "Redis Cluster (any node)" if config.redis.cluster else "Redis"
    log.info("state: %s at %s (shared by every replica)", kind, _without_password(url))
    timeout = config.redis.timeout_s
    return redis_state(config, clock, RedisStore.from_url(
        url,
        cluster=config.redis.cluster,
        socket_timeout=timeout,
        connect_timeout=timeout,
        prefix=config.redis.prefix,
        half_life_s=config.router.half_life_s,
        clock=clock,
        fresh_s=config.redis.read_cache_s,
        key_ttl_s=config.redis.agent_ttl_s or None,
        buffer_limit=config.redis.buffer_keys,
    ))


def redis_state(config: Config, clock: Callable[[], float], store: RedisStore) -> State:
    """State on ``store``'s Redis: tracking and shared usage on its client and prefix."""
    home = RedisHome(store.client, store.prefix)
    tracking = RedisTracking(
        home.client,
        prefix=home.prefix,
        clock=clock,
        agent_ttl_s=config.redis.agent_ttl_s or None,
        buffer_limit=config.redis.buffer_keys,
        buffer_bytes=config.redis.buffer_bytes,
        **_tracking_options(config),
    )
    cooldowns = SharedCooldowns(
        home.client, prefix=home.prefix, interval_s=config.redis.usage_sync_s, clock=clock
    )
    return State(store, tracking, _shared_usage(config, home, clock), cooldowns, redis=home)


def sqlite_state(config: Config, clock: Callable[[], float], state_file: Path) -> State:
    """State in the SQLite database of ``state_file`` (JSON state files there imported first)."""
    database = Database(database_path(state_file))
    if state_file != database.path:
        options = _tracking_options(config)
        migrate_json(database, state_file, now=clock(), retention_s=options["retention_s"],
                     ttl_s=options["decision_ttl_s"])
    store = SqliteStore(database, half_life_s=config.router.half_life_s, clock=clock)
    tracking = SqliteTracking(database, clock=clock, **_tracking_options(config))
    return State(store, tracking, state_file=database.path)


def embedded_state(config: Config, clock: Callable[[], float], store: MemoryStore) -> State:
    """State in process memory on ``store`` (nothing persisted, single process)."""
    return State(store, MemoryTracking(clock=clock, **_tracking_options(config)))


def _tracking_options(config: Config) -> dict[str, Any]:
    return {"retention_s": config.server.workflow_retention_s, "decision_ttl_s": config.router.decision_ttl_s}


def _shared_usage(config: Config, home: RedisHome, clock: Callable[[], float]) -> SharedUsage | None:
    """Cross-process rpm/tpm counts when some model has a limit, in minutes of ``clock``."""
    limited = [name for name, arm in config.arms.items() if arm.rpm is not None or arm.tpm is not None]
    if not limited:
        return None
    return SharedUsage(
        home.client, limited, prefix=config.redis.prefix, interval_s=config.redis.usage_sync_s, clock=clock
    )


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest
