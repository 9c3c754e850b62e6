"""Child processes: start in their own process group, pin to cores, stop every one at exit."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Child:
    """A started process and where its output goes."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    started_at: float

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Supervisor:
    """Owns every child; stop_all() kills each process group (also from atexit and SIGTERM)."""

    logdir: Path
    children: list[Child] = field(default_factory=list)

    def __post_init__(self) -> None:
        atexit.register(self.stop_all)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _raise_interrupt)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        cpus: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Child:
        command = ["taskset", "-c", cpus, *argv] if cpus else list(argv)
        log_path = self.logdir / f"{name}.log"
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )
        child = Child(name, popen, log_path, time.monotonic())
        self.children.append(child)
        return child

    def stop(self, child: Child, grace: float = 5.0) -> None:
        _signal_group(child.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.popen.wait(timeout=grace)
        _signal_group(child.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.popen.wait(timeout=grace)
        if child in self.children:
            self.children.remove(child)

    def stop_all(self) -> None:
        for child in list(reversed(self.children)):
            self.stop(child)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_ready(child: Child, url: str, timeout: float) -> float:
    """Poll url until it answers 2xx; return seconds since the process started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited early:\n{child.log_tail()}")
        if http_ok(url, timeout=1.0):
            return time.monotonic() - child.started_at
        time.sleep(0.05)
    raise RuntimeError(f"{child.name} not ready after {timeout:.0f}s:\n{child.log_tail()}")


def wait_port(child: Child, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited early:\n{child.log_tail()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{child.name} did not open port {port}:\n{child.log_tail()}")


def _parent_map() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _read_stat(int(entry.name))
            if stat:
                parents[int(entry.name)] = int(stat[1])
    return parents


def _read_stat(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name (index 0 = state)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return raw[raw.rfind(")") + 2 :].split()


def tree_pids(root: int) -> list[int]:
    parents = _parent_map()
    tree, frontier = [root], [root]
    while frontier:
        children = [pid for pid, ppid in parents.items() if ppid in frontier]
        tree.extend(children)
        frontier = children
    return tree


def cpu_seconds(root: int) -> float:
    """utime+stime of the live tree plus reaped children (cutime/cstime), in seconds."""
    ticks = 0
    for pid in tree_pids(root):
        stat = _read_stat(pid)
        if stat:
            ticks += sum(int(value) for value in stat[11:15])
    return ticks / CLK_TCK


def _status_kb(pid: int, key: str) -> int:
    for name in (f"/proc/{pid}/status", f"/proc/{pid}/smaps_rollup"):
        with contextlib.suppress(OSError):
            for line in Path(name).read_text().splitlines():
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    return 0


def memory_mb(root: int) -> tuple[float, float]:
    """(RSS, PSS) of the process tree in MiB; PSS does not double count pages shared by workers."""
    pids = tree_pids(root)
    rss = sum(_status_kb(pid, "VmRSS") for pid in pids)
    pss = sum(_status_kb(pid, "Pss") for pid in pids)
    return rss / 1024, pss / 1024


def core_busy_seconds(cores: set[int]) -> float:
    """Busy time (all but idle and iowait, steal included) of these CPUs since boot, in seconds."""
    ticks = 0
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cores:
            numbers = [int(v) for v in values[:8]]
            ticks += sum(numbers) - numbers[3] - numbers[4]
    return ticks / CLK_TCK


def raise_priority(niceness: int) -> bool:
    """Lower this process's nice value (children inherit it); False when not permitted."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, niceness)
    except PermissionError:
        return False
    return True
