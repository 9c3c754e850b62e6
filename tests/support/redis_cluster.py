"""A real Redis Cluster for tests: three masters and three replicas on free loopback ports.

    with RedisClusterNodes(tmp_dir) as cluster:
        cluster.url                      # redis://127.0.0.1:PORT/0 of any node
        cluster.master_of(b"{agent}")    # the RedisServer serving that key's slot
        cluster.fail_over(server)        # kill a master, wait until its replica took over

Built with ``redis-server --cluster-enabled yes`` and ``redis-cli --cluster create``; a
missing binary raises (tests fail, never skip).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType

import redis
from redis.crc import key_slot

from support.redis_server import RedisServer

MASTERS = 3
NODE_TIMEOUT_MS = 1000
READY_TIMEOUT_S = 30.0


def redis_cli() -> str:
    found = shutil.which("redis-cli")
    if found is None:
        raise RuntimeError("redis-cli not found: install the Debian package redis-tools")
    return found


class RedisClusterNodes:
    """Six redis-server processes joined into one cluster (one replica per master)."""

    def __init__(self, data_dir: Path) -> None:
        args = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--appendonly", "yes",
                "--cluster-replica-validity-factor", "0")  # a replica may always take over
        self.nodes = [
            RedisServer(data_dir / f"node{i}", extra_args=args)
            for i in range(2 * MASTERS)
        ]

    @property
    def url(self) -> str:
        return self.alive()[0].url

    def alive(self) -> list[RedisServer]:
        return [node for node in self.nodes if node.running]

    def start(self) -> RedisClusterNodes:
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(
            [redis_cli(), "--cluster", "create", *addresses, "--cluster-replicas", "1", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        """Until every live node reports cluster_state:ok, every slot is served and every
        replica's link to its master is up."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not all(self._ok(node) for node in self.alive()):
            if time.monotonic() > deadline:
                raise RuntimeError("redis cluster did not become ready")
            time.sleep(0.1)

    def master_ports(self) -> dict[tuple[int, int], int]:
        """Slot range -> port of the master serving it, as a live node sees it."""
        with redis.Redis(port=self.alive()[0].port) as client:
            slots = client.execute_command("CLUSTER SLOTS")
        return {(int(start), int(end)): int(master[1]) for start, end, master, *_ in slots}

    def master_of(self, key: bytes) -> RedisServer:
        """The live master currently serving ``key``'s slot."""
        slot = key_slot(key)
        for (start, end), port in self.master_ports().items():
            if start <= slot <= end:
                return next(node for node in self.nodes if node.port == port)
        raise RuntimeError(f"no master serves slot {slot}")

    def fail_over(self, master: RedisServer) -> None:
        """Kill ``master``; wait until a replica serves its slots and the cluster is ok."""
        dead = master.port
        master.stop(hard=True)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while dead in self.master_ports().values():
            if time.monotonic() > deadline:
                raise RuntimeError("no replica took over the killed master's slots")
            time.sleep(0.1)
        self.wait_ready()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    @staticmethod
    def _ok(node: RedisServer) -> bool:
        try:
            with redis.Redis(port=node.port, socket_timeout=1) as client:
                info = client.cluster("info")
                replication = client.info("replication")
        except redis.RedisError:
            return False
        if replication.get("role") == "slave" and replication.get("master_link_status") != "up":
            return False
        return info.get("cluster_state") == "ok" and str(info.get("cluster_slots_ok")) == "16384"

    def __enter__(self) -> RedisClusterNodes:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
