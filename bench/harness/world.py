"""The processes a chaos or soak run needs, all on loopback, all stopped on exit.

redis-server (AOF, fsync always: a SIGKILL loses nothing Redis acknowledged) <- a TcpRelay
with adjustable latency <- the proxy (``python -m proxy serve``, one worker) -> the simulator
in its own process (two models behind groups ``pair`` = primary + backup and ``deadpair`` =
a port nobody listens on + backup). Learning: thompson, exploration 0.5 (the faulty model
keeps being tried), no context tables, no decay.

For rates the simulator and the relay cannot carry on a 2-core machine (both are Python and
take CPU from the proxy): ``upstream="nginx"`` serves both models from stock nginx with a
fixed reply (bench/harness/upstream.py; no fault knobs, so Redis faults only), ``relay=False``
connects the proxy straight to Redis (no slowed-Redis fault), ``workers`` runs
``serve --workers N``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import redis
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from support.redis_server import RedisServer  # noqa: E402
from support.servers import HOST, FakeUpstream, ProxyProcess, free_port  # noqa: E402
from support.tcp_relay import RelayThread  # noqa: E402

from bench.harness import procs  # noqa: E402
from bench.harness.upstream import nginx_conf  # noqa: E402

# Idle upstream connections close after 5 s, as uvicorn's (and vLLM's) default does: the
# extra connections a stall's burst opens then drain within two soak samples instead of
# holding the proxy's fds up for the rest of a short window.
SIMULATOR = (
    "import sys, uvicorn; from proxy.simulator.app import create_simulator_app; "
    "uvicorn.run(create_simulator_app(seed=0), host='127.0.0.1', port=int(sys.argv[1]), "
    "log_level='warning', timeout_keep_alive=5)"
)
ATTEMPT_TIMEOUT_S = 2.0
FIRST_CHUNK_TIMEOUT_S = 0.5


def proxy_config(sim_url: str, dead_url: str) -> dict[str, Any]:
    def entry(name: str, base: str) -> dict[str, Any]:
        params = {"model": f"openai/{name}", "api_base": base, "api_key": "sk-x"}
        return {"model_name": name, "litellm_params": params}

    return {
        "model_list": [entry("primary", sim_url), entry("backup", sim_url), entry("dead", dead_url)],
        "groups": {"pair": ["primary", "backup"], "deadpair": ["dead", "backup"]},
        "router": {
            "policy": "thompson",
            "exploration_rate": 0.5,
            "half_life_s": None,
            "max_attempts": 2,
            "attempt_timeout_s": ATTEMPT_TIMEOUT_S,
            "first_chunk_timeout_s": FIRST_CHUNK_TIMEOUT_S,
            "deadline_s": 10,
            # evidence = outcomes: no per-choice discount, no change detector
            "policy_options": {"use_context": False, "choice_discount": 0.0, "change_memory": 0.0},
        },
    }


class SimulatorProcess:
    """The simulator under uvicorn in a child process (so it takes no CPU from the load)."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.port = free_port()
        self.root = f"http://{HOST}:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        with self.log.open("wb") as out:  # cut bodies make uvicorn log an error per request
            command = [sys.executable, "-c", SIMULATOR, str(self.port)]
            self.process = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.root}/_sim/stats", timeout=1).raise_for_status()
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("simulator did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


class NginxProcess:
    """Stock nginx serving a fixed chat completion (JSON or SSE) at ``root``/v1."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.port = free_port()
        self.root = f"http://{HOST}:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        conf = self.work / "nginx.conf"
        conf.write_text(nginx_conf(self.work, self.port), encoding="utf-8")
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.work / kind).mkdir(exist_ok=True)
        command = ["nginx", "-p", str(self.work), "-c", str(conf), "-g", "daemon off;"]
        with (self.work / "nginx.log").open("wb") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.root}/v1/models", timeout=1).raise_for_status()
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"nginx did not start (see {self.work}/nginx.log)")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(10)


class FixedUpstream:
    """The FakeUpstream calls chaos.py makes, for an upstream without knobs (nginx)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.url = f"{root}/v1"

    def reset(self) -> None:
        return None

    def stats(self) -> dict[str, dict[str, int]]:
        return {}

    def set_profile(self, model: str, **fields: Any) -> dict[str, Any]:
        raise RuntimeError("the nginx upstream has no fault profiles (use the simulator)")

    def close(self) -> None:
        return None


class World:
    """Everything started in ``__enter__``; ``redis_client`` talks to Redis directly. Logs
    (proxy, simulator or nginx, Redis) stay in ``work``, a temp dir named ``chaos-*``.
    ``upstream``: "simulator" or "nginx"; ``relay``: put the TCP relay before Redis;
    ``workers``: proxy processes (``serve --workers``)."""

    def __init__(self, *, upstream: str = "simulator", relay: bool = True, workers: int = 1) -> None:
        if upstream not in ("simulator", "nginx"):
            raise ValueError(f"upstream must be simulator or nginx, got {upstream!r}")
        self._stack = ExitStack()
        self.work = Path(tempfile.mkdtemp(prefix="chaos-"))
        self.redis = RedisServer(self.work / "redis", persistent=True)
        self.upstream_kind, self.use_relay, self.workers = upstream, relay, workers
        self.relay: RelayThread | None = None
        self.upstream: FakeUpstream | FixedUpstream
        self.proxy: ProxyProcess
        self.redis_client: redis.Redis
        self._upstream_pid: int | None = None

    def __enter__(self) -> Self:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def _start(self) -> None:
        stack = self._stack
        self.redis.start()
        stack.callback(self.redis.stop)
        redis_url = self.redis.url
        if self.use_relay:
            self.relay = stack.enter_context(RelayThread(self.redis.port))
            redis_url = self.relay.url
        self.upstream = self._start_upstream()
        stack.callback(self.upstream.close)
        config = proxy_config(self.upstream.url, f"http://{HOST}:{free_port()}/v1")
        path = self.work / "config.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        workers = self.workers if self.workers > 1 else None
        proxy = ProxyProcess(path, workers=workers, env={"REDIS_URL": redis_url}, cwd=self.work)
        self.proxy = stack.enter_context(proxy)
        stack.callback(self._keep_proxy_log)
        self.redis_client = redis.Redis(port=self.redis.port)
        stack.callback(self.redis_client.close)

    def _start_upstream(self) -> FakeUpstream | FixedUpstream:
        if self.upstream_kind == "nginx":
            nginx = NginxProcess(self.work).start()
            self._stack.callback(nginx.stop)
            self._upstream_pid = nginx.process.pid if nginx.process is not None else None
            return FixedUpstream(nginx.root)
        simulator = SimulatorProcess(self.work / "simulator.log").start()
        self._stack.callback(simulator.stop)
        self._upstream_pid = simulator.process.pid if simulator.process is not None else None
        return FakeUpstream(simulator.root)

    def slowed_relay(self) -> RelayThread:
        """The relay (a slowed-Redis fault needs it)."""
        if self.relay is None:
            raise RuntimeError("this world has no relay before Redis")
        return self.relay

    @property
    def url(self) -> str:
        return self.proxy.url

    def _keep_proxy_log(self) -> None:
        """Copy the proxy's output into the work dir (ProxyProcess deletes its own)."""
        (self.work / "proxy.log").write_text(self.proxy.output(), encoding="utf-8")

    def proxy_pid(self) -> int:
        assert self.proxy.process is not None
        return self.proxy.process.pid

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds (user + system) used so far by the proxy (all its workers), Redis (the
        running server only: a killed one's time is gone), the upstream and this process
        (the load generator, and the relay's thread when there is one)."""
        found = {"proxy": procs.cpu_seconds(self.proxy_pid()), "bench": sum(os.times()[:2])}
        if self.redis.process is not None and self.redis.process.poll() is None:
            found["redis"] = procs.cpu_seconds(self.redis.process.pid)
        if self._upstream_pid is not None:
            found["upstream"] = procs.cpu_seconds(self._upstream_pid)
        return found

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()
