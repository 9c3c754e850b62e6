"""Headers every response carries, and the error when no model could answer."""

from __future__ import annotations

from proxy.pipeline.outcome import Outcome
from proxy.wire.errors import ProxyError

MODEL_HEADER = "x-model-manager-model"
ATTEMPTS_HEADER = "x-model-manager-attempts"
OVERHEAD_HEADER = "x-model-manager-overhead-ms"
REQUEST_ID_HEADER = "x-request-id"


def response_headers(
    outcome: Outcome,
    started: float,
    now: float,
    *,
    streaming_from: str | None = None,
    first_chunk_s: float = 0.0,
) -> dict[str, str]:
    """Request id, attempts, the model that answered, and time spent outside upstream calls.

    ``streaming_from`` names the model whose stream is about to be relayed (its attempt is
    not recorded yet); ``first_chunk_s`` is the time that model took to its first chunk.
    """
    upstream = sum(attempt.latency_s for attempt in outcome.attempts) + first_chunk_s
    attempts = len(outcome.attempts) + (streaming_from is not None)
    headers = {
        REQUEST_ID_HEADER: outcome.request_id,
        ATTEMPTS_HEADER: str(attempts),
        OVERHEAD_HEADER: f"{max(now - started - upstream, 0.0) * 1000:.3f}",
    }
    model = streaming_from or outcome.model
    if model is not None:
        headers[MODEL_HEADER] = model
    return headers


def all_failed(outcome: Outcome) -> ProxyError:
    """502 naming each model's failure, or 503 when no model could even be tried."""
    if not outcome.attempts:
        return ProxyError(
            503,
            "no_model_available",
            "no candidate model could be tried (resting after a 429, at its rpm/tpm limit, "
            "too small for the prompt, or out of time)",
        )
    reasons = "; ".join(f"{a.model}: {a.failure} ({a.message})" for a in outcome.attempts)
    return ProxyError(
        502,
        "all_models_failed",
        f"all {len(outcome.attempts)} attempted models failed: {reasons}",
        details=[attempt.describe() for attempt in outcome.attempts],
    )
