"""``POST /v1/embeddings``: relayed to the named model, or to a group's models in config order.

Vectors of different models are not comparable, so nothing is chosen by the policy and nothing
is learned: a named model is the only one tried; a group falls back to its next member on a
retryable failure (a 429 also rests the model, as for chat).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from proxy.config.settings import Arm, Config
from proxy.forwarding.base import Embedder, FailureKind, UpstreamError
from proxy.pipeline.cooldowns import CONFIG_REST_S
from proxy.pipeline.headers import ATTEMPTS_HEADER, MODEL_HEADER, REQUEST_ID_HEADER
from proxy.pipeline.request import json_object, new_request_id
from proxy.pipeline.services import Services
from proxy.wire.errors import ProxyError, bad_request, error_response


@dataclass(frozen=True, slots=True)
class EmbeddingsRequest:
    body: dict[str, Any]
    models: tuple[str, ...]
    request_id: str


def parse_embeddings_request(raw: bytes, config: Config) -> EmbeddingsRequest:
    """Validate the body; the models it may go to. ProxyError 400/404/503 otherwise."""
    body = json_object(raw)
    _check_input(body.get("input"))
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' must name an embedding model or group", param="model")
    return EmbeddingsRequest(body, _models(config, model), new_request_id())


async def handle_embeddings(services: Services, embedder: Embedder, request: EmbeddingsRequest) -> Response:
    """The first answer of the request's models, tried in order; errors OpenAI-shaped."""
    failures: list[tuple[str, UpstreamError]] = []
    for name in request.models[: services.config.router.max_attempts]:
        if services.cooldowns.resting(name):
            continue
        try:
            raw = await embedder.embed(_arm(services.config, name), request.body, _timeout(services))
        except UpstreamError as error:
            failures.append((name, error))
            if error.kind is FailureKind.RATE_LIMITED:
                services.cooldowns.rest(name, error.retry_after_s)
            elif error.kind.rests_model:
                services.cooldowns.rest(name, CONFIG_REST_S, f"{error.kind.value}: {error.message}"[:300])
            if not error.kind.retryable:
                return error_response(_rejected(error), _headers(request, None, len(failures)))
            continue
        return Response(
            raw, media_type="application/json", headers=_headers(request, name, len(failures) + 1)
        )
    return error_response(_all_failed(failures), _headers(request, None, len(failures)))


def _models(config: Config, model: str) -> tuple[str, ...]:
    """The deployments ``model`` names: an embedding deployment (``model_info.mode:
    embedding``) or a group of them; else a chat deployment or group named explicitly (the
    upstream decides whether it embeds)."""
    arms = embedding_arms(config)
    if model in arms:
        return (model,)
    members = tuple(name for name, arm in arms.items() if arm.group == model)
    if members:
        return members
    if model in config.arms:
        return (model,)
    if model in config.groups:
        return config.groups[model]
    if model in config.unavailable:
        raise ProxyError(
            503, "model_unavailable", f"model {model!r} is configured but unavailable", param="model"
        )
    raise ProxyError(
        404, "model_not_found", f"model {model!r} is not registered (see GET /v1/models)", param="model"
    )


def embedding_arms(config: Config) -> Mapping[str, Arm]:
    """Every available deployment of mode ``embedding``."""
    return config.arms_by_mode.get("embedding", {})


def _arm(config: Config, name: str) -> Arm:
    return embedding_arms(config).get(name) or config.arms[name]


def _check_input(value: object) -> None:
    if isinstance(value, str) and value:
        return
    if isinstance(value, list) and value and all(_is_input_item(item) for item in value):
        return
    raise bad_request(
        "'input' must be a non-empty string, or a non-empty array of strings or token arrays", param="input"
    )


def _is_input_item(item: object) -> bool:
    if isinstance(item, str):
        return True
    if isinstance(item, int) and not isinstance(item, bool):
        return True
    return isinstance(item, list) and all(isinstance(token, int) for token in item)


def _timeout(services: Services) -> float:
    router = services.config.router
    return min(router.attempt_timeout_s, router.deadline_s)


def _headers(request: EmbeddingsRequest, model: str | None, attempts: int) -> dict[str, str]:
    headers = {REQUEST_ID_HEADER: request.request_id, ATTEMPTS_HEADER: str(attempts)}
    return {**headers, MODEL_HEADER: model} if model is not None else headers


def _rejected(error: UpstreamError) -> ProxyError:
    status = error.status if error.status and 400 <= error.status < 500 else 400
    return ProxyError(status, "upstream_rejected_request", error.message)


def _all_failed(failures: list[tuple[str, UpstreamError]]) -> ProxyError:
    if not failures:
        return ProxyError(503, "no_model_available", "every model of this request is resting after a 429")
    reasons = "; ".join(f"{name}: {error.kind} ({error.message})" for name, error in failures)
    return ProxyError(502, "all_models_failed", f"all {len(failures)} attempted models failed: {reasons}")
