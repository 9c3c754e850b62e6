"""The Upstream the pipeline calls: direct for OpenAI-wire deployments, litellm for the rest."""

from __future__ import annotations

from typing import Any

from proxy.completion import ChunkStream, Completion
from proxy.config import Arm, Config
from proxy.direct import DirectUpstream
from proxy.upstream import LitellmUpstream, openai_wire_target


class Forwarder:
    """Sends each call down the cheapest path that carries it faithfully."""

    def __init__(self, config: Config) -> None:
        self.litellm = LitellmUpstream()
        targets = {}
        if config.router.direct_forwarding:
            targets = {name: t for name, arm in config.arms.items() if (t := openai_wire_target(arm))}
        self.direct = DirectUpstream(targets, self.litellm.cost)

    async def start(self) -> None:
        await self.direct.start()

    async def close(self) -> None:
        await self.direct.close()

    def path(self, arm: Arm) -> str:
        return "direct" if self.direct.serves(arm) else "litellm"

    async def complete(self, arm: Arm, body: dict[str, Any], timeout: float) -> Completion:
        if self.direct.serves(arm):
            return await self.direct.complete(arm, body, timeout)
        return await self.litellm.complete(arm, body, timeout)

    async def open_stream(
        self, arm: Arm, body: dict[str, Any], *, first_chunk_timeout: float, timeout: float
    ) -> ChunkStream:
        upstream = self.direct if self.direct.serves(arm) else self.litellm
        return await upstream.open_stream(arm, body, first_chunk_timeout=first_chunk_timeout, timeout=timeout)
