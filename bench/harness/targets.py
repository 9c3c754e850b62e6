"""The systems under test: direct upstream, our proxy (1 or 2 workers), LiteLLM's proxy."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.procs import Child, Supervisor, free_port, wait_port, wait_ready
from harness.upstream import Upstream

LITELLM_VERSION = "1.102.4"
OFFLINE_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_OFFLINE_MODE": "true",
    "LITELLM_TELEMETRY_DISABLED": "true",
}
MODEL_MANAGER = Path(sys.prefix) / "bin" / "model-manager"
APT_TOOLS = {
    "nginx": "nginx",
    "wrk": "wrk",
    "redis-server": "redis-server",
    "taskset": "util-linux",
}
FLAVOURS = ("openai", "anthropic")


@dataclass(frozen=True)
class Target:
    """One thing wrk points at: its chat URL and the process whose CPU and memory count."""

    name: str
    url: str
    child: Child
    cpus: str
    ready_s: float | None = None


def env_pair(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` as (KEY, VALUE), for an argparse ``type`` (``--variant-env``)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def ensure_tools(tools: Mapping[str, str] = APT_TOOLS) -> None:
    """apt-get install the package of every tool (executable -> Debian package) missing."""
    missing = [pkg for tool, pkg in tools.items() if shutil.which(tool) is None]
    if not missing:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update"], check=True, env=env)
    install = ["apt-get", "install", "-y", "--no-install-recommends", *sorted(set(missing))]
    subprocess.run(install, check=True, env=env)


def ensure_litellm_venv(venv: Path) -> Path:
    """bench/.venv-litellm with litellm[proxy] pinned; created on first run."""
    python = venv / "bin" / "python"
    if _installed_version(python) != LITELLM_VERSION:
        print(f"installing litellm[proxy]=={LITELLM_VERSION} into {venv} (first run only)...")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q", f"litellm[proxy]=={LITELLM_VERSION}"]
        subprocess.run(pip, check=True)
    return venv / "bin" / "litellm"


def _installed_version(python: Path) -> str | None:
    if not python.exists():
        return None
    code = "import importlib.metadata as m; print(m.version('litellm'))"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return done.stdout.strip() or None


def ours_unavailable_reason() -> str | None:
    """None when `model-manager serve --help` works, else why not."""
    if not MODEL_MANAGER.exists():
        return f"{MODEL_MANAGER} not installed"
    argv = [str(MODEL_MANAGER), "serve", "--help"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    except subprocess.TimeoutExpired:
        return "`model-manager serve --help` timed out"
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["?"]
        return f"`model-manager serve --help` failed: {last[0]}"
    return None


def start_redis(sup: Supervisor, cpus: str) -> str:
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    argv += ["--appendonly", "no", "--daemonize", "no"]
    child = sup.start("redis", argv, cpus=cpus)
    wait_port(child, port, timeout=10)
    return f"redis://127.0.0.1:{port}/0"


def model_entries(upstream: Upstream, flavour: str, *, names: list[str]) -> list[dict[str, Any]]:
    letters = ("a", "b", "c")
    if flavour == "openai":
        params = [("openai/fast-" + x, upstream.openai_base) for x in letters]
    else:
        params = [("anthropic/claude-" + x, upstream.anthropic_base) for x in letters]
    return [
        {"model_name": name, "litellm_params": {"model": m, "api_base": base, "api_key": "sk-fake"}}
        for name, (m, base) in zip(names, params, strict=True)
    ]


def ours_config(upstream: Upstream, flavour: str, redis_url: str) -> dict[str, Any]:
    prefix = "fast-" if flavour == "openai" else "claude-"
    names = [prefix + x for x in ("a", "b", "c")]
    return {
        "model_list": model_entries(upstream, flavour, names=names),
        "redis": {"url": redis_url},
    }


def litellm_config(upstream: Upstream, flavour: str) -> dict[str, Any]:
    return {
        "model_list": model_entries(upstream, flavour, names=["auto"] * 3),
        "router_settings": {"routing_strategy": "simple-shuffle"},
    }


def _write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def start_ours(
    sup: Supervisor,
    workdir: Path,
    *,
    name: str,
    flavour: str,
    config: dict[str, Any],
    workers: int,
    cpus: str,
    binary: Path = MODEL_MANAGER,
    env: Mapping[str, str] | None = None,
) -> Target:
    """``binary serve`` on a free port (another checkout's executable for ``ours-before``),
    with ``env`` added to its environment."""
    port = free_port()
    conf = _write_yaml(workdir / f"{name}-{flavour}.yaml", config)
    argv = [str(binary), "serve", "--config", str(conf), "--host", "127.0.0.1"]
    argv += ["--port", str(port)]
    argv += ["--workers", str(workers)] if workers > 1 else []
    env = {**OFFLINE_ENV, "REDIS_URL": config["redis"]["url"], **(env or {})}
    child = sup.start(f"{name}-{flavour}", argv, cpus=cpus, env=env)
    ready = wait_ready(child, f"http://127.0.0.1:{port}/health", timeout=120)
    return Target(name, f"http://127.0.0.1:{port}/v1/chat/completions", child, cpus, ready)


def start_litellm(
    sup: Supervisor,
    workdir: Path,
    *,
    name: str,
    flavour: str,
    litellm_bin: Path,
    config: dict[str, Any],
    cpus: str,
) -> Target:
    port = free_port()
    conf = _write_yaml(workdir / f"{name}-{flavour}.yaml", config)
    argv = [str(litellm_bin), "--config", str(conf), "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--num_workers", "1"]
    child = sup.start(f"{name}-{flavour}", argv, cpus=cpus, env=OFFLINE_ENV)
    ready = wait_ready(child, f"http://127.0.0.1:{port}/health/liveliness", timeout=180)
    return Target(name, f"http://127.0.0.1:{port}/v1/chat/completions", child, cpus, ready)


def direct_target(upstream: Upstream, flavour: str, cpus: str) -> Target:
    path = "/v1/chat/completions" if flavour == "openai" else "/anthropic/v1/messages"
    return Target("direct", f"http://127.0.0.1:{upstream.port}{path}", upstream.child, cpus)
