"""The translated path: litellm's provider transforms (proxy.forwarding.translation) over a pooled aiohttp
session, instead of litellm.acompletion's thread pool, logging and stream wrapper.

Serves the arms proxy.forwarding.litellm_upstream resolved a route for, and only requests whose fields are all
verified (translation.carries); the Forwarder sends everything else through acompletion.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from proxy.config.settings import Arm
from proxy.forwarding.base import Completion, Summary, guarded, wants_usage
from proxy.forwarding.chunk_frames import ChunkFramer
from proxy.forwarding.http_pool import (
    Call,
    PooledClient,
    first_event,
    open_within,
    read_body,
    stream_cut,
    transport_error,
)
from proxy.forwarding.sse_events import DONE, DONE_DATA, event_data, sse_events
from proxy.forwarding.translation import Prepared, Translator, carries


class TranslatedUpstream:
    """Translated calls over one aiohttp session (open between start and close)."""

    def __init__(self) -> None:
        self._translators: dict[str, Translator] = {}
        self._client = PooledClient("TranslatedUpstream")

    def add(self, translators: Mapping[str, Translator]) -> None:
        """Serve these arms (by name) from now on."""
        self._translators.update(translators)

    def serves(self, arm: Arm, body: Mapping[str, Any]) -> bool:
        return arm.name in self._translators and carries(body)

    async def start(self) -> None:
        await self._client.start()

    async def close(self) -> None:
        await self._client.close()

    async def complete(self, arm: Arm, body: dict[str, Any], timeout: float) -> Completion:
        """One non-streaming call; raises UpstreamError."""
        translator = self._translators[arm.name]
        prepared = translator.prepare(body, stream=False)
        async with self._post(translator, prepared, stream=False, timeout=timeout) as response:
            raw = await read_body(response)
            if response.status != 200:
                raise translator.failure(response.status, raw, response.headers)
        payload = translator.completion(prepared, raw, response.headers)
        summary = Summary()
        summary.add_payload(payload)
        return Completion(orjson.dumps(payload, default=str), summary)

    async def open_stream(
        self, arm: Arm, body: dict[str, Any], *, first_chunk_timeout: float, timeout: float
    ) -> TranslatedStream:
        """Open a stream and wait for its first frame; raises UpstreamError before it."""
        translator = self._translators[arm.name]
        prepared = translator.prepare(body, stream=True)
        framer = ChunkFramer(
            model=translator.route.model, created=int(time.time()), wants_usage=wants_usage(body)
        )
        call = self._post(translator, prepared, stream=True, timeout=timeout)
        stream = TranslatedStream(translator, prepared, call, framer)
        await open_within(stream, first_chunk_timeout)
        return stream

    def _post(self, translator: Translator, prepared: Prepared, *, stream: bool, timeout: float) -> Call:
        url = translator.route.url
        return self._client.post(url, prepared.data, prepared.headers, timeout=timeout, stream=stream)


class TranslatedStream:
    """A provider's event stream relayed as OpenAI chunk frames."""

    def __init__(self, translator: Translator, prepared: Prepared, call: Call, framer: ChunkFramer) -> None:
        self._translator, self._prepared, self._call = translator, prepared, call
        self._framer = framer
        self._frames: AsyncIterator[bytes] | None = None
        self.summary = framer.summary
        self.first = b""

    async def open(self) -> None:
        response = await self._call.__aenter__()
        if response.status != 200:
            raise self._translator.failure(response.status, await read_body(response), response.headers)
        self._frames = self._relayed(sse_events(response.content.iter_any()))
        self.first = await first_event(self._frames)

    def events(self) -> AsyncIterator[bytes]:
        assert self._frames is not None
        return guarded(self._frames, lambda exc: stream_cut(transport_error(exc).message), self._tail)

    def _tail(self) -> list[bytes]:
        if not self._framer.finished:
            raise stream_cut("upstream stream ended before its finish reason")
        return [*self._framer.final(), DONE]

    async def _relayed(self, events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        parser = self._translator.parser(self._prepared)
        async for event in events:
            data = event_data(event)
            if data is None:
                continue
            if data == DONE_DATA:
                return
            for frame in self._framer.frames(self._parse(parser, data)):
                yield frame

    def _parse(self, parser: Any, data: bytes) -> Any:
        """One event through the provider's chunk parser; its errors mapped as acompletion maps them."""
        try:
            return parser.chunk_parser(orjson.loads(data))
        except orjson.JSONDecodeError:
            raise stream_cut("upstream sent an event that is not JSON") from None
        except Exception as exc:
            raise self._translator.exception(exc, mid_stream=bool(self.first)) from exc

    async def aclose(self) -> None:
        if self._call.response is not None:
            self._call.response.close()


