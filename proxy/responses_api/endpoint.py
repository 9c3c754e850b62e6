"""``POST /v1/responses`` routed by the chat pipeline, relayed natively or translated.

The Responses body is validated and translated to a chat body (proxy.responses_api.request)
that the pipeline routes like any chat completion (``proxy.pipeline.flow.handle_chat``:
candidates, policy, fallback, learning, tracking, decision headers). Each attempt
(proxy.responses_api.attempts) sends the client's own body to a deployment that speaks the
Responses API, and the translated one to every other deployment, whose answer it translates
back. Errors keep the pipeline's OpenAI shape and headers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from proxy.pipeline.flow import handle_chat
from proxy.pipeline.request import ChatRequest, chat_request, json_object
from proxy.pipeline.services import Services
from proxy.responses_api.attempts import responses_dialect
from proxy.responses_api.reply import Envelope
from proxy.responses_api.request import to_chat_body
from proxy.wire.sse_response import Reply

RESPONSE_ID_PREFIX = "resp_"


@dataclass(frozen=True, slots=True)
class ResponsesRequest:
    """A validated Responses request: the chat request the pipeline routes, and the echo
    (whose ``request`` is the client's body)."""

    chat: ChatRequest
    envelope: Envelope


def parse_responses_request(raw: bytes, headers: Mapping[str, str], now: float) -> ResponsesRequest:
    """Validate and translate; raises ProxyError (400) naming what is wrong."""
    body = json_object(raw)
    chat = chat_request(to_chat_body(body), headers)
    return ResponsesRequest(chat, Envelope(RESPONSE_ID_PREFIX + chat.request_id, int(now), body))


async def handle_responses(services: Services, request: ResponsesRequest) -> Reply:
    """Route through the chat pipeline, each attempt native or translated (errors as they are)."""
    chat = services.agents.admit(request.chat)
    body = dict(request.envelope.request)
    return await handle_chat(services, chat, responses_dialect(services, body, chat, request.envelope))
