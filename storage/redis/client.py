"""The one place where a single Redis and a Redis Cluster differ.

``connect(url, cluster=...)`` returns a client of either kind; both offer the same commands,
scripts and non-transactional pipelines, so callers never ask which one they hold. On a
cluster (redis-py's asyncio ``RedisCluster``):

- a pipeline is split by node and sent to every node at once: one logical round trip, and
  replies come back in the order the commands were queued;
- a node or slot that cannot answer (connection lost, CLUSTERDOWN, TRYAGAIN, a slot nobody
  serves while a replica takes over) raises :class:`SlotUnavailable`, a redis-py
  ``ConnectionError``, from a pipeline or a command: never a per-command error reply, never
  an exception outside redis-py's ``RedisError``. So readers fall back and writers keep their
  calls in doubt (resent under their seqs) exactly as on a single Redis that did not answer.
  The client then reads the cluster's layout again before its next command;
- ``scan_iter`` walks every master; a pipeline's ``evalsha`` goes to its keys' slot.

Scripts must touch keys of one hash slot (every key schema here carries a hash tag). Both
kinds pack commands with hiredis's C packer (``hiredis_packing``), not redis-py's Python one.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

import hiredis
import redis.asyncio
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    AskError,
    ClusterDownError,
    DataError,
    RedisClusterException,
    TryAgainError,
)
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)

MAX_CONNECTIONS = 64
"""Connections per process (per node on a cluster); a single Redis's pool makes a request
beyond them wait for one (up to the socket timeout)."""
CLUSTER_MAX_CONNECTIONS = 4 * MAX_CONNECTIONS
"""Connections per cluster node: redis-py's cluster nodes raise instead of waiting for one."""

_SLOT_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    ClusterDownError,  # MASTERDOWN too
    TryAgainError,
    AskError,  # MovedError too: a redirection redis-py could not follow
    RedisClusterException,  # SlotNotCoveredError, no node for a slot
    OSError,
)
"""Replies and errors of a cluster meaning "this slot's node did not answer"."""


Conn = TypeVar("Conn", bound=AbstractConnection)


class SlotUnavailable(RedisConnectionError):
    """A cluster node or slot did not answer (its master is down or being replaced)."""


class ClusterClient(RedisCluster):
    """RedisCluster whose failures read like a single Redis's (see the module doc), its
    nodes' connections packing with hiredis like the single client's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        shared = self.nodes_manager.connection_kwargs  # every node made later is made from it
        shared["connection_class"] = fast = hiredis_packing(shared["connection_class"])
        for node in self.nodes_manager.startup_nodes.values():
            node.connection_class = fast

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> ClusterPipe:
        """A non-transactional pipeline over every node (``transaction`` must be falsy)."""
        if transaction or shard_hint:
            raise RedisClusterException("cluster pipelines here are never transactions")
        return ClusterPipe(self)  # type: ignore[abstract]  # redis-py's stubs mark it abstract

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().execute_command(*args, **kwargs)
        except _SLOT_ERRORS as exc:
            raise await self.unavailable(exc) from exc

    async def unavailable(self, exc: BaseException) -> SlotUnavailable:
        """``exc`` as SlotUnavailable, after dropping connections so the next command reads
        the cluster's layout again (redis-py's own recovery after a node failure)."""
        await self.aclose()
        return exc if isinstance(exc, SlotUnavailable) else SlotUnavailable(repr(exc))


class ClusterPipe(ClusterPipeline):
    """A cluster pipeline raising SlotUnavailable where a node did not answer."""

    def __init__(self, client: ClusterClient) -> None:
        super().__init__(client)
        self._owner = client

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> ClusterPipe:
        """EVALSHA routed by its keys' slot (redis-py blocks the method on cluster pipelines
        because a script may span slots; every script here touches one slot)."""
        self.execute_command("EVALSHA", sha, numkeys, *keys_and_args)
        return self

    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> list[Any]:
        """Replies in queued order; SlotUnavailable if any node did not answer (some commands
        may have run: callers treat the whole pipeline as unanswered)."""
        try:
            replies = await super().execute(raise_on_error, allow_redirections)
        except _SLOT_ERRORS as exc:
            raise await self._owner.unavailable(exc) from exc
        lost = next((r for r in replies if isinstance(r, _SLOT_ERRORS)), None)
        if lost is not None:
            raise await self._owner.unavailable(lost) from lost
        return replies


Client = redis.asyncio.Redis | ClusterClient
"""A client of either kind."""


def connect(url: str, *, cluster: bool, socket_timeout: float, connect_timeout: float) -> Client:
    """A client for ``url`` (on a cluster: any node) with short timeouts and no retries of its
    own (the store and tracking resend writes themselves, under their sequence numbers)."""
    if cluster:
        return cast(ClusterClient, ClusterClient.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            max_connections=CLUSTER_MAX_CONNECTIONS,
            retry=Retry(NoBackoff(), 0),
        ))
    return _single(url, socket_timeout, connect_timeout)


def _single(url: str, socket_timeout: float, connect_timeout: float) -> redis.asyncio.Redis:
    """The pool blocks when all its connections are busy instead of raising (redis-py's default
    pool raises MaxConnectionsError under a burst of concurrent requests). Maintenance
    notifications are turned off where redis-py has them: while on, its pool skips the check
    that replaces connections the server closed (e.g. after a restart)."""
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=socket_timeout,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
    )
    pool.connection_class = hiredis_packing(pool.connection_class)
    client = redis.asyncio.Redis(
        connection_pool=pool, retry=Retry(NoBackoff(), 0), **_maint_notifications_off()
    )
    client.auto_close_connection_pool = True  # closing the client closes its pool, as from_url's
    return client


class _HiredisPacking:
    """Commands packed by hiredis's C packer, as redis-py's sync connections pack them; its
    asyncio connections pack in Python, about 10x slower (the largest client-side cost of a
    pipelined write). The same bytes for every argument redis-py accepts; a bool or None is a
    DataError, as with redis-py."""

    def pack_command(self, *args: Any) -> list[bytes]:
        name = args[0]
        if isinstance(name, str):
            args = (*name.encode().split(), *args[1:])
        elif b" " in name:
            args = (*name.split(), *args[1:])
        packable: Any = args
        try:
            return [hiredis.pack_command(packable)]
        except TypeError:  # a bytearray (redis-py takes it) or what redis-py refuses too
            packable = tuple(bytes(a) if isinstance(a, bytearray) else a for a in args)
        try:
            return [hiredis.pack_command(packable)]
        except TypeError as exc:
            raise DataError(f"{exc} (command {args[0]!r})") from exc


class HiredisConnection(_HiredisPacking, redis.asyncio.Connection):
    """A TCP connection packing with hiredis."""


class HiredisSSLConnection(_HiredisPacking, redis.asyncio.SSLConnection):
    """A TLS connection packing with hiredis."""


class HiredisUnixConnection(_HiredisPacking, redis.asyncio.UnixDomainSocketConnection):
    """A Unix-socket connection packing with hiredis."""


def hiredis_packing(kind: type[Conn]) -> type[Conn]:
    """The connection class packing with hiredis for ``kind`` (what a URL's scheme chose),
    or ``kind`` itself when it is none of redis-py's three."""
    for fast in (HiredisSSLConnection, HiredisUnixConnection, HiredisConnection):
        if fast.__mro__[2] is kind:
            return cast(type[Conn], fast)  # a subclass of kind
    return kind


def _maint_notifications_off() -> dict[str, Any]:
    try:
        from redis.maint_notifications import MaintNotificationsConfig  # noqa: PLC0415
    except ImportError:  # redis-py < 7
        return {}
    return {"maint_notifications_config": MaintNotificationsConfig(enabled=False)}
