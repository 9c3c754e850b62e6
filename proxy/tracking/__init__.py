"""Per (agent, model) statistics, workflow tracking and explicit feedback.

``build_tracker`` picks the backend that matches the posterior store: RedisTracking on the
RedisStore's client (shared by every replica), or MemoryTracking in embedded mode, saved
next to the MemoryStore's state file (tracking_file.path_for) when the store has one.
"""

from __future__ import annotations

from collections.abc import Callable

from policies.base import PosteriorStore
from proxy.config.settings import Config
from proxy.pipeline.router import Router
from proxy.tracking import tracking_file
from proxy.tracking.backend import TrackingBackend
from proxy.tracking.memory import MemoryTracking
from proxy.tracking.redis_backend import RedisTracking
from proxy.tracking.tracker import Tracker
from storage.embedded.store import MemoryStore
from storage.redis.store import RedisStore

__all__ = ["Tracker", "build_tracker"]


def build_tracker(
    config: Config, router: Router, store: PosteriorStore, clock: Callable[[], float]
) -> Tracker:
    """A Tracker on the backend matching ``store``."""
    backend: TrackingBackend
    retention = config.server.workflow_retention_s
    ttl = config.router.decision_ttl_s
    if isinstance(store, RedisStore):
        backend = RedisTracking(
            store.client, prefix=store.prefix, clock=clock, retention_s=retention, decision_ttl_s=ttl
        )
    else:
        path = store.state_file if isinstance(store, MemoryStore) else None
        backend = MemoryTracking(
            clock=clock,
            retention_s=retention,
            decision_ttl_s=ttl,
            state_file=None if path is None else tracking_file.path_for(path),
        )
    return Tracker(backend, config=config, router=router, store=store, clock=clock)
