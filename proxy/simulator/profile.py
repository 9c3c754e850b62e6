"""SimProfile: how one simulated upstream model behaves, and its validated dict form."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

RATES = ("failure_rate", "bad_json_rate", "bad_tool_call_rate")


@dataclass(frozen=True, slots=True)
class SimProfile:
    """Behaviour of one simulated model; every field has a fast, healthy default.

    Timings are milliseconds. An error is returned with probability ``failure_rate``;
    when ``failure_rate`` is None it is 1.0 if ``fail_status`` is set, else 0.0, so
    ``SimProfile(fail_status=503)`` always fails. ``cut_stream_after`` counts SSE data
    events (the role chunk is the first); after ``stall_stream_after`` events the stream
    pauses ``stall_ms``, and after ``error_event_after`` events it sends an error event (chat:
    OpenAI-style ``{"error": ...}``; Responses: ``response.failed``) and ends. ``content`` None
    means a reply naming the model,
    or the JSON a ``response_format`` asks for.

    Tools (see structured.py): ``tool_call`` makes ``tool_choice`` "auto" call the first
    tool; ``tool_arguments`` None means arguments generated from the tool's schema, a string
    is sent as is. ``bad_json_rate`` is the share of JSON answers that are truncated, not
    JSON, or off-schema; ``bad_tool_call_rate`` the share of tool calls whose arguments are
    truncated JSON or lack required properties. Every draw uses the simulator's seeded rng.

    ``html_error`` sends errors as an HTML page (``text/html``, like a gateway's), not
    OpenAI JSON. ``cut_body`` sends a non-streamed answer's headers and the first half of its
    JSON, then closes the connection (the body never completes).
    """

    latency_ms: float = 20.0
    ttft_ms: float = 10.0
    chunk_interval_ms: float = 2.0
    chunks: int = 4
    failure_rate: float | None = None
    fail_status: int | None = None
    retry_after_s: float | None = None
    context_window_error: bool = False
    cut_stream_after: int | None = None
    stall_stream_after: int | None = None
    stall_ms: float = 60_000.0
    error_event_after: int | None = None
    malformed_json: bool = False
    content: str | None = None
    finish_reason: str = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    tool_call: bool = False
    tool_arguments: str | None = None
    bad_json_rate: float = 0.0
    bad_tool_call_rate: float = 0.0
    hang: bool = False
    html_error: bool = False
    cut_body: bool = False

    def __post_init__(self) -> None:
        """Raise ValueError for a rate outside [0, 1]."""
        for name in RATES:
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"profile field {name!r} must be within [0, 1], got {value!r}")

    @property
    def error_rate(self) -> float:
        """Probability that a request gets an error status."""
        if self.failure_rate is not None:
            return self.failure_rate
        return 1.0 if self.fail_status is not None else 0.0

    @property
    def error_status(self) -> int:
        """HTTP status of a simulated failure (500 unless ``fail_status`` says otherwise)."""
        return self.fail_status if self.fail_status is not None else 500


def _allowed_types(annotation: Any) -> tuple[type, ...]:
    """The runtime types a field annotation admits (float admits int)."""
    args = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else ()
    allowed = tuple(a for a in args if isinstance(a, type)) or (annotation,)
    return (*allowed, int) if float in allowed else allowed


_HINTS = typing.get_type_hints(SimProfile)


def _check_field(name: str, value: object) -> None:
    """Raise ValueError unless ``value`` fits field ``name``."""
    if name not in _HINTS:
        known = ", ".join(sorted(_HINTS))
        raise ValueError(f"unknown profile field {name!r} (known: {known})")
    allowed = _allowed_types(_HINTS[name])
    is_bool = isinstance(value, bool)
    if is_bool and bool not in allowed:
        raise ValueError(f"profile field {name!r} must not be a boolean")
    if not isinstance(value, allowed) and not (value is None and type(None) in allowed):
        raise ValueError(f"profile field {name!r} has the wrong type: {value!r}")


def profile_from_dict(data: Mapping[str, object], base: SimProfile | None = None) -> SimProfile:
    """``base`` (default: SimProfile()) with the fields in ``data``; ValueError names bad keys."""
    for name, value in data.items():
        _check_field(name, value)
    return dataclasses.replace(base or SimProfile(), **data)  # type: ignore[arg-type]


def profile_to_dict(profile: SimProfile) -> dict[str, object]:
    """All fields of ``profile`` as a JSON-ready dict."""
    return dataclasses.asdict(profile)
