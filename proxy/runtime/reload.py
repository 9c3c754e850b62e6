"""Hot reload: re-read the config file and serve it from the next request on.

``Reloader.reload()`` reads the file with the loader the process started with. A file that
does not validate keeps the running config: the ConfigError (its message starts with the
key path) is logged and returned. Otherwise the runtime swaps to a new generation
(proxy.runtime.build.Runtime.replace): requests already in flight finish on the Services they
started with; new ones see the new models (with their priors and forced tries), and removed
models leave every candidate set. Posteriors, tracking, cooldowns and counters are kept.

Settings bound when the process started (storage, master key, simulator mount) are not
swapped: a change to them is reported as needing a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from proxy.config.reader import ConfigError
from proxy.config.settings import Config
from proxy.pipeline.router import Router
from proxy.runtime.build import Runtime

log = logging.getLogger("model_manager.reload")

Loader = Callable[[], Config]
"""Reads and validates the config file the process was started with."""


@dataclass(frozen=True, slots=True)
class ReloadReport:
    """What a reload did: models added and removed, settings that need a restart, or the
    error that kept the running config."""

    reloaded: bool
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    restart_required: tuple[str, ...] = ()
    error: str | None = None
    models: tuple[str, ...] = field(default=())

    def payload(self) -> dict[str, Any]:
        return {
            "object": "reload",
            "reloaded": self.reloaded,
            "models": list(self.models),
            "added": list(self.added),
            "removed": list(self.removed),
            "restart_required": list(self.restart_required),
        }


class Reloader:
    """Reloads ``runtime`` from ``load``, one reload at a time; ``swapped`` runs after each swap."""

    def __init__(
        self, runtime: Runtime, load: Loader, swapped: Callable[[Runtime], None] = lambda _: None
    ) -> None:
        self._runtime = runtime
        self._load = load
        self._swapped = swapped
        self._lock = asyncio.Lock()

    async def check(self) -> ReloadReport:
        """Read and validate the file without serving it (the report of what would change)."""
        old = self._runtime.config
        try:
            new = await asyncio.to_thread(self._load)
            Router(new)
        except ConfigError as exc:
            log.error("reload rejected, still serving %s: %s", old.source, exc)
            return ReloadReport(False, error=str(exc), models=tuple(old.arms))
        return _report(old, new)

    async def refresh(self) -> ReloadReport | None:
        """Reload only when the file now yields other models (a wildcard's upstream listing
        changed); None when they are the same (nothing swapped) or the file is bad (logged)."""
        async with self._lock:
            old = self._runtime.config
            try:
                new = await asyncio.to_thread(self._load)
            except ConfigError as exc:
                log.error("model refresh skipped, still serving %s: %s", old.source, exc)
                return None
            if new.arms == old.arms:
                return None
        return await self.reload()

    async def refresh_every(self, interval_s: float) -> None:
        """``refresh`` every ``interval_s`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.refresh()
            except Exception:
                log.exception("model refresh failed; next try in %.0f s", interval_s)

    async def reload(self) -> ReloadReport:
        """Read the file and swap to it, or keep the running config and say why."""
        async with self._lock:
            old = self._runtime.config
            try:
                new = await asyncio.to_thread(self._load)
                await self._runtime.replace(new)
            except ConfigError as exc:
                log.error("reload rejected, still serving %s: %s", old.source, exc)
                return ReloadReport(False, error=str(exc), models=tuple(old.arms))
            self._swapped(self._runtime)
            report = _report(old, new)
            log.info(
                "reloaded %s: %d models (added %s, removed %s)%s",
                new.source,
                len(new.arms),
                list(report.added) or "none",
                list(report.removed) or "none",
                f"; restart needed for {', '.join(report.restart_required)}"
                if report.restart_required
                else "",
            )
            return report


def _report(old: Config, new: Config) -> ReloadReport:
    return ReloadReport(
        True,
        added=tuple(name for name in new.arms if name not in old.arms),
        removed=tuple(name for name in old.arms if name not in new.arms),
        restart_required=restart_required(old, new),
        models=tuple(new.arms),
    )


def restart_required(old: Config, new: Config) -> tuple[str, ...]:
    """Key paths whose change a reload does not apply (the running values stay)."""
    bound = {
        "redis.url": (old.redis_url(), new.redis_url()),
        "redis.prefix": (old.redis.prefix, new.redis.prefix),
        "server.state_file": (old.server.state_file, new.server.state_file),
        "server.master_key": (old.server.master_key, new.server.master_key),
        "simulator": (old.simulator, new.simulator),
    }
    limited = {name for name, arm in new.arms.items() if arm.rpm is not None or arm.tpm is not None}
    was_limited = {name for name, arm in old.arms.items() if arm.rpm is not None or arm.tpm is not None}
    changed = [path for path, (before, after) in bound.items() if before != after]
    if limited - was_limited and new.redis_url():
        changed.append("model_list[].rpm/tpm (new limited models are counted per process until restart)")
    return tuple(changed)
