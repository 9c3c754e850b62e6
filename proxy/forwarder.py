"""The Upstream the pipeline calls: direct for OpenAI-wire deployments, litellm for the rest.

litellm takes seconds of CPU to import, so it loads in a thread after the server starts;
direct deployments never wait for it, and the first litellm call waits only if it is early.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import TYPE_CHECKING, Any

from proxy.completion import ChunkStream, Completion, Usage
from proxy.config import Arm, Config
from proxy.direct import DirectUpstream
from proxy.pricing import configured_prices, cost_of
from proxy.wire import openai_wire_target

if TYPE_CHECKING:
    from proxy.upstream import LitellmUpstream


class Forwarder:
    """Sends each call down the cheapest path that carries it faithfully."""

    def __init__(self, config: Config) -> None:
        targets = {}
        if config.router.direct_forwarding:
            targets = {name: t for name, arm in config.arms.items() if (t := openai_wire_target(arm))}
        self.direct = DirectUpstream(targets)
        self._loading: asyncio.Future[Any] | None = None
        self._litellm: LitellmUpstream | None = None

    async def start(self) -> None:
        await self.direct.start()
        self._loading = asyncio.ensure_future(asyncio.to_thread(importlib.import_module, "proxy.upstream"))

    async def close(self) -> None:
        await self.direct.close()
        if self._loading is not None:
            await asyncio.gather(self._loading, return_exceptions=True)

    def path(self, arm: Arm) -> str:
        return "direct" if self.direct.serves(arm) else "litellm"

    async def litellm(self) -> LitellmUpstream:
        """The litellm path, once litellm has loaded."""
        if self._litellm is None:
            module = await (self._loading or asyncio.to_thread(importlib.import_module, "proxy.upstream"))
            self._litellm = module.LitellmUpstream()
        return self._litellm

    async def complete(self, arm: Arm, body: dict[str, Any], timeout: float) -> Completion:
        if self.direct.serves(arm):
            return await self.direct.complete(arm, body, timeout)
        return await (await self.litellm()).complete(arm, body, timeout)

    async def open_stream(
        self, arm: Arm, body: dict[str, Any], *, first_chunk_timeout: float, timeout: float
    ) -> ChunkStream:
        upstream = self.direct if self.direct.serves(arm) else await self.litellm()
        return await upstream.open_stream(arm, body, first_chunk_timeout=first_chunk_timeout, timeout=timeout)

    async def cost(self, arm: Arm, usage: Usage) -> float | None:
        """USD for a call: config prices, else litellm's price map, else None.

        Never waits for litellm to load: until it has, a call without configured prices has
        unknown cost (neutral in the reward), so learning does not stall after a cold start.
        """
        prices = configured_prices(arm)
        if prices is not None:
            return cost_of(prices, usage)
        if self._litellm is None and not (self._loading is not None and self._loading.done()):
            return None
        return (await self.litellm()).cost(arm, usage)
