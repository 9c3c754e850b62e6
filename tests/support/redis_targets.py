"""Where a test's Redis lives: one redis-server, or a Redis Cluster (three masters, three
replicas). Tests that take a ``RedisTarget`` run unchanged on either.

    target.url / target.cluster      what ``redis.url`` / ``redis.cluster`` say
    target.store(**kw)               a RedisStore on it
    target.client()                  a synchronous redis-py client of the right kind
    target.config()                  the config's ``redis`` section
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from storage.redis.store import RedisStore


@dataclass(frozen=True)
class RedisTarget:
    url: str
    cluster: bool

    def store(self, **kw: Any) -> RedisStore:
        return RedisStore.from_url(self.url, cluster=self.cluster, **kw)

    def client(self) -> redis.Redis | redis.RedisCluster:
        if self.cluster:
            return redis.RedisCluster.from_url(self.url)
        return redis.Redis.from_url(self.url)

    def flush(self) -> None:
        """Empty every master (a cluster's FLUSHALL goes to each)."""
        with self.client() as client:
            client.flushall()

    def config(self, **more: Any) -> dict[str, Any]:
        return {"url": self.url, "cluster": self.cluster, **more}
