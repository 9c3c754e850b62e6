"""Headers every response carries, and the error when no model could answer."""

from __future__ import annotations

from collections.abc import Sequence

from proxy.pipeline.outcome import Attempt
from proxy.wire.errors import ProxyError

MODEL_HEADER = "x-model-manager-model"
ATTEMPTS_HEADER = "x-model-manager-attempts"
OVERHEAD_HEADER = "x-model-manager-overhead-ms"
REQUEST_ID_HEADER = "x-request-id"


def response_headers(
    request_id: str, attempts: Sequence[Attempt], model: str | None, elapsed_s: float
) -> dict[str, str]:
    """Request id, attempts, the model that answered, and the time spent outside upstream calls
    (``elapsed_s`` since the request started minus every attempt's latency, floored at 0)."""
    upstream = sum(attempt.latency_s for attempt in attempts)
    headers = {
        REQUEST_ID_HEADER: request_id,
        ATTEMPTS_HEADER: str(len(attempts)),
        OVERHEAD_HEADER: f"{max(elapsed_s - upstream, 0.0) * 1000:.3f}",
    }
    if model is not None:
        headers[MODEL_HEADER] = model
    return headers


def all_failed(attempts: Sequence[Attempt]) -> ProxyError:
    """502 naming each model's failure, or 503 when no model could even be tried."""
    if not attempts:
        return ProxyError(
            503,
            "no_model_available",
            "no candidate model could be tried (resting after a 429, at its rpm/tpm limit, "
            "too small for the prompt, or out of time)",
        )
    reasons = "; ".join(f"{a.model}: {a.failure} ({a.message})" for a in attempts)
    return ProxyError(
        502,
        "all_models_failed",
        f"all {len(attempts)} attempted models failed: {reasons}",
        details=[attempt.describe() for attempt in attempts],
    )
