"""Simulated ``POST /v1/embeddings``: deterministic vectors, the model's profile for errors."""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Mapping
from typing import Any

DIMENSIONS = 8


def vector(text: str, dimensions: int = DIMENSIONS) -> list[float]:
    """A unit-free vector in [0, 1) that depends only on ``text``."""
    digest = hashlib.sha256(text.encode()).digest()
    return [digest[i] / 256 for i in range(dimensions)]


def inputs_of(body: Mapping[str, Any]) -> list[str] | None:
    """The request's inputs as strings (token arrays as their repr), or None when malformed."""
    value = body.get("input")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        return [item if isinstance(item, str) else repr(item) for item in value]
    return None


def encoded(values: list[float], encoding_format: object) -> list[float] | str:
    """Floats, or little-endian float32 bytes in base64 when the request asks for it."""
    if encoding_format != "base64":
        return values
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def embeddings_body(model: str, inputs: list[str], encoding_format: object = None) -> dict[str, Any]:
    """An OpenAI ``list`` of ``embedding`` objects with usage."""
    tokens = sum(max(1, len(text) // 4) for text in inputs)
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": index, "embedding": encoded(vector(text), encoding_format)}
            for index, text in enumerate(inputs)
        ],
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
