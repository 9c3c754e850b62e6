"""The attempts of one Responses request: relayed natively or translated, per deployment.

A deployment that speaks the Responses API (``services.upstream`` is a ResponsesUpstream and
``speaks_responses(arm)``) gets the client's body as it came; every other one gets the
translated chat body, and its answer is translated back here, per attempt, so a request whose
candidates mix both kinds falls back from one kind to the other before its first byte. Either
way the attempt returns a Completion whose body is a ``response`` object, or a stream of
Responses events that writes its own ``response.failed`` ending when its upstream breaks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from proxy.config.settings import Arm
from proxy.forwarding.base import ChunkStream, Completion, ResponsesUpstream, UpstreamError
from proxy.pipeline.flow import Dialect, chat_call, first_chunk_timeout
from proxy.pipeline.request import ChatRequest
from proxy.pipeline.services import Services
from proxy.responses_api.events import StreamTranslator
from proxy.responses_api.frames import encode_all, frame_events
from proxy.responses_api.reply import Envelope, to_response


def responses_dialect(
    services: Services, body: dict[str, Any], chat: ChatRequest, envelope: Envelope
) -> Dialect:
    """How each attempt of this request is sent: ``body`` natively, ``chat`` (its ChatRequest)
    translated."""
    native = services.upstream if isinstance(services.upstream, ResponsesUpstream) else None
    translated = chat_call(services, chat)
    stream = body.get("stream") is True

    async def call(arm: Arm, timeout: float) -> Completion | ChunkStream:
        if native is not None and native.speaks_responses(arm):
            if not stream:
                return await native.respond(arm, body, timeout)
            wait = first_chunk_timeout(services, timeout)
            return await native.open_response_stream(arm, body, first_chunk_timeout=wait, timeout=timeout)
        answer = await translated(arm, timeout)
        if isinstance(answer, Completion):
            return _response(answer, envelope)
        return TranslatedEvents(answer, StreamTranslator(envelope))

    return Dialect(call, failure_frame=_written_by_the_stream, resumable=False)


def _written_by_the_stream(error: UpstreamError) -> bytes:
    """Responses streams end themselves with ``response.failed``: nothing more to add."""
    return b""


def _response(completion: Completion, envelope: Envelope) -> Completion:
    """A chat completion's answer as a ``response`` object (its summary unchanged)."""
    response = to_response(orjson.loads(completion.body), envelope)
    return Completion(orjson.dumps(response), completion.summary)


class TranslatedEvents:
    """A chat stream relayed as Responses events; a break ends in ``response.failed``."""

    def __init__(self, chunks: ChunkStream, translator: StreamTranslator) -> None:
        self._chunks, self._translator = chunks, translator
        self.summary = chunks.summary
        self.first = frame_events(translator, chunks.first)

    async def events(self) -> AsyncIterator[bytes]:
        try:
            async for frame in self._chunks.events():
                if events := frame_events(self._translator, frame):
                    yield events
        except UpstreamError as error:
            yield encode_all(self._translator.fail({"message": error.message}))
            raise

    async def aclose(self) -> None:
        await self._chunks.aclose()
