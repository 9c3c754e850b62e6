"""Periodic health probes: ``GET {api_base}/models`` per upstream, every ``server.health_interval_s``.

A model whose upstream does not answer 2xx rests (proxy.pipeline.cooldowns) until the next
probe, so the flow skips it (no attempt, no learning) and falls to the other candidates; its
reason is in ``Services.unhealthy`` (``/ready``'s ``unhealthy_models``). The first good probe
of its upstream wakes it. Models without an ``api_base`` are not probed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable

import httpx

from proxy.config.discovery import api_key_of
from proxy.pipeline.services import Services

log = logging.getLogger("model_manager.health")
PROBE_TIMEOUT_S = 5.0


async def probe_once(services: Services, client: httpx.AsyncClient) -> None:
    """Probe every upstream of ``services.config`` once; update rests and reasons."""
    interval = services.config.server.health_interval_s
    by_base: dict[tuple[str, str | None], list[str]] = defaultdict(list)
    for name, arm in services.config.arms.items():
        base = arm.params.get("api_base")
        if isinstance(base, str):
            by_base[(base.rstrip("/"), api_key_of(arm.params.get("api_key")))].append(name)
    results = await asyncio.gather(*(_problem(client, base, key) for base, key in by_base))
    for ((base, _), names), problem in zip(by_base.items(), results, strict=True):
        for name in names:
            _mark(services, name, None if problem is None else f"{base}/models: {problem}", interval)
    for name in list(services.unhealthy):
        if name not in services.config.arms:
            del services.unhealthy[name]


def _mark(services: Services, name: str, problem: str | None, interval: float) -> None:
    if problem is None:
        if services.unhealthy.pop(name, None) is not None:
            services.cooldowns.rest(name, 0.0)
            log.info("model %s is healthy again", name)
        return
    if name not in services.unhealthy:
        log.warning("model %s is unhealthy (out of routing until it recovers): %s", name, problem)
    services.unhealthy[name] = problem
    services.cooldowns.rest(name, interval + PROBE_TIMEOUT_S)


async def _problem(client: httpx.AsyncClient, base: str, key: str | None) -> str | None:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        response = await client.get(f"{base}/models", headers=headers, timeout=PROBE_TIMEOUT_S)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return None if response.is_success else f"HTTP {response.status_code}"


@contextlib.asynccontextmanager
async def probing(current: Callable[[], Services]) -> AsyncIterator[None]:
    """While open, probe the current generation's upstreams every ``server.health_interval_s``
    (as configured at start; 0: no probes)."""
    interval = current().config.server.health_interval_s
    if interval <= 0:
        yield
        return

    async def loop() -> None:
        async with httpx.AsyncClient() as client:
            while True:
                try:
                    await probe_once(current(), client)
                except Exception:
                    log.exception("health probe failed")
                await asyncio.sleep(interval)

    task = asyncio.get_running_loop().create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
