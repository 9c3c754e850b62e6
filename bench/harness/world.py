"""The processes a chaos or soak run needs, all on loopback, all stopped on exit.

redis-server (AOF, fsync always: a SIGKILL loses nothing Redis acknowledged) <- a TcpRelay
with adjustable latency <- the proxy (``python -m proxy serve``, one worker) -> the simulator
in its own process (two models behind groups ``pair`` = primary + backup and ``deadpair`` =
a port nobody listens on + backup). Learning: thompson, exploration 0.5 (the faulty model
keeps being tried), no context tables, no decay.
"""

from __future__ import annotations

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

SIMULATOR = (
    "import sys, uvicorn; from proxy.simulator.app import create_simulator_app; "
    "uvicorn.run(create_simulator_app(seed=0), host='127.0.0.1', port=int(sys.argv[1]), "
    "log_level='warning', timeout_keep_alive=30)"
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
            "policy_options": {"use_context": False, "choice_discount": 0.0},  # evidence = outcomes
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


class World:
    """Everything started in ``__enter__``; ``redis_client`` talks to Redis directly. Logs
    (proxy, simulator, Redis) stay in ``work``, a temp dir named ``chaos-*``."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self.work = Path(tempfile.mkdtemp(prefix="chaos-"))
        self.redis = RedisServer(self.work / "redis", persistent=True)
        self.relay: RelayThread
        self.upstream: FakeUpstream
        self.proxy: ProxyProcess
        self.redis_client: redis.Redis

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
        self.relay = stack.enter_context(RelayThread(self.redis.port))
        simulator = SimulatorProcess(self.work / "simulator.log").start()
        stack.callback(simulator.stop)
        self.upstream = FakeUpstream(simulator.root)
        stack.callback(self.upstream.close)
        config = proxy_config(self.upstream.url, f"http://{HOST}:{free_port()}/v1")
        path = self.work / "config.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.proxy = stack.enter_context(ProxyProcess(path, env={"REDIS_URL": self.relay.url}, cwd=self.work))
        stack.callback(self._keep_proxy_log)
        self.redis_client = redis.Redis(port=self.redis.port)
        stack.callback(self.redis_client.close)

    @property
    def url(self) -> str:
        return self.proxy.url

    def _keep_proxy_log(self) -> None:
        """Copy the proxy's output into the work dir (ProxyProcess deletes its own)."""
        (self.work / "proxy.log").write_text(self.proxy.output(), encoding="utf-8")

    def proxy_pid(self) -> int:
        assert self.proxy.process is not None
        return self.proxy.process.pid

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()
