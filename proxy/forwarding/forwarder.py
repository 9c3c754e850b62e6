"""The Upstream the pipeline calls: direct for OpenAI-wire deployments, litellm for the rest.

Deployments marked as speaking the Responses API (``model_info.supported_endpoints``) also get
Responses requests relayed natively (proxy.forwarding.responses_relay), whatever
``router.direct_forwarding`` says.

On the litellm side, deployments of a verified provider (proxy.forwarding.translation.FAST_PROVIDERS) are
translated by litellm's provider transforms over our own HTTP client (proxy.forwarding.translated), unless
``router.direct_translation`` is off; every other deployment, and any request with fields that
path is not verified for, goes through litellm.acompletion.

litellm takes seconds of CPU and a few hundred MB to import, so it is imported only when a
deployment needs it, in a thread after the server starts; direct deployments never wait for
it. Prices come from config or litellm's price map read as data (proxy.forwarding.price_map).
"""

from __future__ import annotations

import asyncio
import importlib
from typing import TYPE_CHECKING, Any

from proxy.config.settings import Arm, Config
from proxy.forwarding.base import ChunkStream, Completion, Usage
from proxy.forwarding.direct import DirectUpstream
from proxy.forwarding.openai_wire import openai_wire_target
from proxy.forwarding.price_map import arm_prices
from proxy.forwarding.pricing import UnitPrices, cost_of
from proxy.forwarding.responses_relay import ResponsesRelay
from proxy.forwarding.translated import TranslatedUpstream

if TYPE_CHECKING:
    from proxy.forwarding.base import Upstream
    from proxy.forwarding.litellm_upstream import LitellmUpstream


class Forwarder:
    """Sends each call down the cheapest path that carries it faithfully."""

    def __init__(self, config: Config) -> None:
        targets = {}
        if config.router.direct_forwarding:
            targets = {name: t for name, arm in config.arms.items() if (t := openai_wire_target(arm))}
        self.direct = DirectUpstream(targets)
        native = [arm for arm in config.arms.values() if arm.native_responses]
        self.responses = ResponsesRelay({arm.name: t for arm in native if (t := openai_wire_target(arm))})
        self.translated = TranslatedUpstream()
        self._arms = list(config.arms.values())
        self._litellm_arms = [arm for arm in self._arms if arm.name not in targets]
        self._translate = config.router.direct_translation
        self._prices: dict[str, UnitPrices | None] = {}
        self._loading: asyncio.Future[Any] | None = None
        self._litellm: LitellmUpstream | None = None

    async def start(self) -> None:
        await self.direct.start()
        await self.responses.start()
        self._prices = await asyncio.to_thread(arm_prices, self._arms)
        if self._litellm_arms:
            if self._translate:
                await self.translated.start()
            self._loading = asyncio.ensure_future(_import_litellm_path())

    async def close(self) -> None:
        await self.direct.close()
        await self.responses.close()
        await self.translated.close()
        if self._loading is not None:
            await asyncio.gather(self._loading, return_exceptions=True)

    async def litellm(self) -> LitellmUpstream:
        """The litellm path, once litellm has loaded (and the translated path knows its arms)."""
        if self._litellm is None:
            module = await (self._loading or _import_litellm_path())
            litellm = module.LitellmUpstream()
            if self._translate:
                self.translated.add(litellm.translators(self._litellm_arms))
            self._litellm = litellm
        return self._litellm

    async def path(self, arm: Arm, body: dict[str, Any]) -> str:
        """Which path carries this call: direct, translated or litellm."""
        if self.direct.serves(arm):
            return "direct"
        await self.litellm()
        return "translated" if self.translated.serves(arm, body) else "litellm"

    async def complete(self, arm: Arm, body: dict[str, Any], timeout: float) -> Completion:
        return await (await self._upstream(arm, body)).complete(arm, body, timeout)

    async def open_stream(
        self, arm: Arm, body: dict[str, Any], *, first_chunk_timeout: float, timeout: float
    ) -> ChunkStream:
        upstream = await self._upstream(arm, body)
        return await upstream.open_stream(arm, body, first_chunk_timeout=first_chunk_timeout, timeout=timeout)

    def speaks_responses(self, arm: Arm) -> bool:
        """Whether Responses requests go to ``arm`` natively (else translated to chat)."""
        return self.responses.speaks_responses(arm)

    async def respond(self, arm: Arm, body: dict[str, Any], timeout: float) -> Completion:
        return await self.responses.respond(arm, body, timeout)

    async def open_response_stream(
        self, arm: Arm, body: dict[str, Any], *, first_chunk_timeout: float, timeout: float
    ) -> ChunkStream:
        return await self.responses.open_response_stream(
            arm, body, first_chunk_timeout=first_chunk_timeout, timeout=timeout
        )

    async def embed(self, arm: Arm, body: dict[str, Any], timeout: float) -> bytes:
        """Embeddings: relayed directly for OpenAI-wire deployments, else litellm.aembedding."""
        if self.direct.serves(arm):
            return await self.direct.embed(arm, body, timeout)
        return await (await self.litellm()).embed(arm, body, timeout)

    async def _upstream(self, arm: Arm, body: dict[str, Any]) -> Upstream:
        path = await self.path(arm, body)
        if path == "direct":
            return self.direct
        return self.translated if path == "translated" else await self.litellm()

    async def cost(self, arm: Arm, usage: Usage) -> float | None:
        """USD for a call: config prices, else litellm's price map, else None (unknown)."""
        return cost_of(self._prices.get(arm.name), usage)


async def _import_litellm_path() -> Any:
    """The litellm path (and so litellm), imported in a thread so the event loop keeps serving."""
    return await asyncio.to_thread(importlib.import_module, "proxy.forwarding.litellm_upstream")
